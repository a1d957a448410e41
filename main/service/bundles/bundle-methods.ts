import { createHash } from 'node:crypto';
import {
  OpError,
  type AuditActor,
  type PluginInstallResponse,
  type PluginRemoveResponse,
  type PluginRollbackResponse,
  type PluginShowResponse,
} from '../../common/contract/index.js';
import type { AppendInput } from '../audit/entry.js';
import type { Handlers } from '../core/service.js';
import { verifyBundle } from './verify.js';
import type { BundleStore } from './store.js';
import { readTrustedKeys } from './trusted-keys.js';

export interface BundleMethodsOptions {
  store: BundleStore;
  /** The directory of trusted signers' public keys (core config `[bundles] trusted_keys`). */
  trustedKeysDir: string;
  audit: { record(input: AppendInput): Promise<{ seq: number }> };
  /** Discovers the plugins again and makes the engine plan with them from now on. */
  reload: () => Promise<void>;
  /** Why the plugin of that name is not loaded from the store after a reload, or undefined when it is. */
  notLoaded: (name: string) => string | undefined;
  /** Where a plugin of that name comes from when not from the store (built-in, the plugin path), if it exists. */
  elsewhere: (name: string) => string | undefined;
}

type BundleHandlers = Pick<Handlers, 'PluginInstall' | 'PluginRemove' | 'PluginRollback' | 'PluginShow'>;

const who = (actor: AuditActor): string =>
  actor.uid === null ? actor.subject : `uid ${actor.uid} (${actor.subject})`;

/**
 * Manager1's bundle methods. Changes run one at a time (each a few renames, but two installs of
 * one plugin must not interleave their switches); each is audited with the bundle's hash and
 * signer, refusals too, and is followed by a reload, so the next plan uses what is now active.
 */
export function bundleMethods(o: BundleMethodsOptions): BundleHandlers {
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };
  const audit = (
    actor: AuditActor,
    plugin: string | null,
    summary: string,
    payload: unknown,
  ): Promise<{ seq: number }> => o.audit.record({ kind: 'plugin', actor, plugin, summary, payload });

  return {
    PluginInstall: (req, actor) =>
      exclusive(async (): Promise<PluginInstallResponse> => {
        const archive = Buffer.from(req.bundle, 'base64');
        const archiveSha256 = createHash('sha256').update(archive).digest('hex');
        const file = req.file ?? 'bundle';
        const trusted = readTrustedKeys(o.trustedKeysDir);
        let verified;
        try {
          verified = verifyBundle(archive, trusted.keys, o.trustedKeysDir);
          const name = verified.manifest.plugin.name;
          const other = o.elsewhere(name);
          if (other !== undefined) {
            throw new OpError(
              'BundleRefused',
              `bundle refused: a plugin ${name} is already loaded from ${other}; a bundle cannot replace it`,
              { plugin: name },
              { check: 'name' },
            );
          }
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          await audit(actor, null, `plugin install of ${file} refused: ${message}`, {
            action: 'install',
            file,
            archiveSha256,
            refused: message,
            ...(e instanceof OpError ? { details: e.details } : {}),
          });
          throw e;
        }
        const name = verified.manifest.plugin.name;
        const { before, already } = await o.store.install(verified, who(actor));
        await o.reload();
        const problem = o.notLoaded(name);
        if (problem !== undefined && !already) {
          // what cannot be loaded is not left active: back to what was, and the install is refused
          if (before !== null) await o.store.rollback(name);
          else o.store.remove(name);
          await o.reload();
          const message = `plugin ${name} ${verified.manifest.plugin.version} (bundle ${verified.hash}) was installed but does not load: ${problem}; ${before !== null ? `switched back to ${before}` : 'removed again'}`;
          await audit(actor, name, `plugin install of ${name} undone: ${message}`, {
            action: 'install',
            name,
            hash: verified.hash,
            signer: verified.signer.fingerprint,
            refused: message,
          });
          throw new OpError('PluginUnavailable', message, { plugin: name });
        }
        const version = verified.manifest.plugin.version;
        const { seq } = await audit(
          actor,
          name,
          already
            ? `plugin install ${name} ${version}: bundle ${verified.hash} is already the active version`
            : `plugin install ${name} ${version}: bundle ${verified.hash} signed by ${verified.signer.fingerprint} (${verified.signer.file}) is active${before !== null ? `, ${before} kept for rollback` : ''}`,
          {
            action: 'install',
            name,
            version,
            hash: verified.hash,
            signer: verified.signer.fingerprint,
            signerKey: verified.signer.file,
            before,
            already,
            storage: o.store.mode,
            file,
            archiveSha256,
          },
        );
        return {
          name,
          version,
          hash: verified.hash,
          signer: verified.signer.fingerprint,
          signerKey: verified.signer.file,
          before,
          already,
          bundle: o.store.show(name),
          auditSeq: seq,
        };
      }),

    PluginRollback: (req, actor) =>
      exclusive(async (): Promise<PluginRollbackResponse> => {
        const { from, to } = await o.store.rollback(req.name);
        await o.reload();
        const bundle = o.store.show(req.name);
        const target = bundle.versions.find((v) => v.hash === to);
        const { seq } = await audit(
          actor,
          req.name,
          `plugin rollback ${req.name}: bundle ${to} (${target?.version ?? '?'}, signed by ${target?.signer ?? '?'}) is active again, ${from} kept`,
          {
            action: 'rollback',
            name: req.name,
            from,
            to,
            hash: to,
            signer: target?.signer,
            storage: o.store.mode,
          },
        );
        return { name: req.name, from, to, bundle, auditSeq: seq };
      }),

    PluginRemove: (req, actor) =>
      exclusive(async (): Promise<PluginRemoveResponse> => {
        const before = o.store.known().includes(req.name) ? o.store.show(req.name) : undefined;
        const { removed } = o.store.remove(req.name);
        await o.reload();
        const active = before?.versions.find((v) => v.active);
        const { seq } = await audit(
          actor,
          req.name,
          `plugin remove ${req.name}: ${removed.length} version(s) deleted${active !== undefined ? ` (active was ${active.hash}, signed by ${active.signer})` : ''}`,
          { action: 'remove', name: req.name, removed, hash: active?.hash, signer: active?.signer },
        );
        return { name: req.name, removed, auditSeq: seq };
      }),

    PluginShow: async (req, actor): Promise<PluginShowResponse> => {
      const names = req.name !== undefined ? [req.name] : o.store.known();
      const bundles = names.map((n) => o.store.show(n));
      const trusted = readTrustedKeys(o.trustedKeysDir);
      await audit(actor, req.name ?? null, `plugin show ${req.name ?? '(all installed bundles)'}`, {
        action: 'show',
        bundles: bundles.map((b) => ({ name: b.name, active: b.active, previous: b.previous })),
      });
      return {
        storage: o.store.mode,
        trustedKeys: {
          dir: trusted.dir,
          keys: trusted.keys.map((k) => ({ fingerprint: k.fingerprint, file: k.file })),
          ignored: trusted.ignored,
        },
        bundles,
      };
    },
  };
}
