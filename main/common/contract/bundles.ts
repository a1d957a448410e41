import { z } from 'zod';

// Manager1's methods for plugins installed from signed bundles (issue 18): install, remove,
// rollback and show, each authorised by org.opdbus.manage-plugins and audited (kind plugin).

/** The largest base64 bundle a request may carry (6 MiB of bundle; MAX_REQUEST_CHARS bounds the whole body). */
export const MAX_BUNDLE_BASE64_CHARS = Math.ceil((6 * 1024 * 1024) / 3) * 4;

const Hash = z.string().regex(/^[0-9a-f]{64}$/);
const PluginName = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'a plugin name');

/** One installed version of a plugin. */
export const BundleVersion = z.object({
  name: z.string(),
  version: z.string(),
  /** SHA-256 of the bundle's manifest: the bundle's name. */
  hash: Hash,
  /** The signing key's fingerprint (sha256 of its SPKI). */
  signer: z.string(),
  /** The trusted key file it matched when installed. */
  signerKey: z.string(),
  installedAt: z.string(),
  /** Who installed it (uid and bus name). */
  installedBy: z.string(),
  files: z.number().int(),
  bytes: z.number().int(),
  path: z.string(),
  /** subvolume on BTRFS, directory elsewhere. */
  kind: z.enum(['subvolume', 'directory']),
  readOnly: z.boolean(),
  active: z.boolean(),
  previous: z.boolean(),
});
export type BundleVersion = z.infer<typeof BundleVersion>;

/** An installed plugin: its versions (newest first), which is active, which rollback returns to. */
export const InstalledBundle = z.object({
  name: z.string(),
  storage: z.enum(['btrfs', 'plain']),
  active: Hash.nullable(),
  previous: Hash.nullable(),
  versions: z.array(BundleVersion),
});
export type InstalledBundle = z.infer<typeof InstalledBundle>;

export const PluginInstallRequest = z
  .object({
    /** The bundle file's bytes, base64. */
    bundle: z
      .string()
      .max(MAX_BUNDLE_BASE64_CHARS)
      .regex(/^[A-Za-z0-9+/]*=*$/, 'base64'),
    /** The file's name on the client, for messages and the audit log. */
    file: z.string().max(4096).optional(),
  })
  .strict();
export const PluginInstallResponse = z.object({
  name: z.string(),
  version: z.string(),
  hash: Hash,
  signer: z.string(),
  signerKey: z.string(),
  /** The version active before (now previous), or null for a first install. */
  before: Hash.nullable(),
  /** The same bundle was already the active version: nothing changed. */
  already: z.boolean(),
  bundle: InstalledBundle,
  auditSeq: z.number().int(),
});
export type PluginInstallResponse = z.infer<typeof PluginInstallResponse>;

export const PluginRemoveRequest = z.object({ name: PluginName }).strict();
export const PluginRemoveResponse = z.object({
  name: z.string(),
  /** The hashes of the versions deleted. */
  removed: z.array(Hash),
  auditSeq: z.number().int(),
});
export type PluginRemoveResponse = z.infer<typeof PluginRemoveResponse>;

export const PluginRollbackRequest = z.object({ name: PluginName }).strict();
export const PluginRollbackResponse = z.object({
  name: z.string(),
  from: Hash,
  to: Hash,
  bundle: InstalledBundle,
  auditSeq: z.number().int(),
});
export type PluginRollbackResponse = z.infer<typeof PluginRollbackResponse>;

export const PluginShowRequest = z.object({ name: PluginName.optional() }).strict();
export const PluginShowResponse = z.object({
  /** How versions are stored in this data dir. */
  storage: z.enum(['btrfs', 'plain']),
  /** The trusted keys directory and the keys in it (and the files in it that were not taken, and why). */
  trustedKeys: z.object({
    dir: z.string(),
    keys: z.array(z.object({ fingerprint: z.string(), file: z.string() })),
    ignored: z.array(z.object({ file: z.string(), reason: z.string() })),
  }),
  /** The one named, or every installed plugin. */
  bundles: z.array(InstalledBundle),
});
export type PluginShowResponse = z.infer<typeof PluginShowResponse>;
