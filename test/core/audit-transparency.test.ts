import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dropAuditCheckpoints, rewriteAuditHistory } from '../support/audit-rewrite.js';
import { TestSandbox, writeDocument } from '../support/sandbox.js';

// The transparency log end to end: the core signs checkpoints, the CLI proves and verifies offline,
// and the witness in the CLI catches a rewrite of history made with direct access to the SQLite file.
let sb: TestSandbox;
let docs: string;

beforeAll(async () => {
  delete process.env['OP_DBUS_WITNESS'];
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
  for (const loc of ['One', 'Two', 'Three']) {
    const file = writeDocument(
      docs,
      'd.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: loc } } }),
    );
    expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
  }
});
afterAll(async () => {
  await sb?.stop();
});

function save(name: string, text: string): string {
  const file = join(docs, name);
  writeFileSync(file, text);
  return file;
}

function ok(args: string[], env?: Record<string, string>): string {
  const r = env === undefined ? sb.cli(args) : sbCliWithEnv(args, env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

function sbCliWithEnv(args: string[], env: Record<string, string>) {
  const saved = new Map(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return sb.cli(args);
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  }
}

describe('checkpoints and proofs through the CLI', () => {
  it('prints a C2SP checkpoint, proves inclusion and consistency, and verifies both offline', () => {
    const key = save('key.txt', ok(['audit', 'key']));
    expect(readFileSync(key, 'utf8')).toMatch(/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/);
    const cp1Text = ok(['audit', 'checkpoint']);
    const lines = cp1Text.split('\n');
    expect(lines[1]).toMatch(/^[1-9][0-9]*$/);
    expect(Buffer.from(lines[2] as string, 'base64')).toHaveLength(32);
    expect(lines[3]).toBe('');
    expect(lines[4]).toMatch(/^\u2014 \S+ [A-Za-z0-9+/]+={0,2}$/);
    // 4-byte key hash + 64-byte Ed25519 signature
    expect(Buffer.from((lines[4] as string).split(' ')[2] as string, 'base64')).toHaveLength(68);
    const cp1 = save('cp1.txt', cp1Text);
    const size1 = Number(lines[1]);

    const proof = save('incl.txt', ok(['audit', 'prove', '1']));
    expect(ok(['audit', 'verify-proof', '--proof', proof, '--checkpoint', cp1, '--key', key])).toMatch(
      /^OK: entry 1/,
    );
    const json = JSON.parse(ok(['audit', 'prove', '1', '--json'])) as {
      size: number;
      entry: string;
      checkpoint: string;
    };
    expect(json.size).toBe(size1);
    expect(json.checkpoint).toBe(cp1Text);
    expect(JSON.parse(Buffer.from(json.entry, 'base64').toString())).toMatchObject({
      seq: 1,
      kind: 'approve',
    });

    const file = writeDocument(
      docs,
      'd.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Four' } } }),
    );
    expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
    const cp2 = save('cp2.txt', ok(['audit', 'checkpoint']));
    const cons = save('cons.txt', ok(['audit', 'consistency', String(size1)]));
    expect(
      ok([
        'audit',
        'verify-proof',
        '--proof',
        cons,
        '--checkpoint',
        cp2,
        '--old-checkpoint',
        cp1,
        '--key',
        key,
      ]),
    ).toMatch(/^OK: the log of \d+ entries extends the log of \d+ entries/);

    // export → import-verify recomputes the root; anyone can do it from {seq, leaf} alone
    const exported = save('export.jsonl', ok(['audit', 'export']));
    expect(ok(['audit', 'import-verify', exported, '--checkpoint', cp2, '--key', key])).toMatch(/^OK/);
    const first = JSON.parse(readFileSync(exported, 'utf8').split('\n')[0] as string) as {
      seq: number;
      leaf: string;
    };
    const body = Buffer.from(first.leaf, 'base64');
    const row = JSON.parse(ok(['audit', 'list', '--json', '--limit', '10000'])) as {
      entries: { seq: number; leaf: string }[];
    };
    const leaf0 = row.entries.find((e) => e.seq === 0)?.leaf;
    expect(
      createHash('sha256')
        .update(Buffer.concat([Buffer.from([0]), body]))
        .digest('hex'),
    ).toBe(leaf0);
  });

  it('names each bad input: garbage before or after a proof, wrong size, forged signature, truncation', () => {
    const key = join(docs, 'key.txt');
    const cp1 = join(docs, 'cp1.txt');
    const cp2 = join(docs, 'cp2.txt');
    const proof = readFileSync(join(docs, 'incl.txt'), 'utf8');
    const reject = (args: string[]) => {
      const r = sb.cli(['audit', 'verify-proof', ...args, '--key', key]);
      expect(r.code).toBe(1);
      return r.stderr + r.stdout;
    };
    expect(reject(['--proof', save('g1.txt', `hello\n${proof}`), '--checkpoint', cp1])).toMatch(
      /line 1: expected op-dbus.audit\/inclusion-proof@v1.*"hello".*g1\.txt/,
    );
    expect(reject(['--proof', save('g2.txt', `${proof}junk\n`), '--checkpoint', cp1])).toMatch(
      /line \d+: not the base64 of a 32-byte hash: "junk" \(text after the proof\?\).*g2\.txt/,
    );
    expect(reject(['--proof', save('g3.txt', `${proof}junk`), '--checkpoint', cp1])).toMatch(
      /does not end with a newline/,
    );
    expect(reject(['--proof', join(docs, 'incl.txt'), '--checkpoint', cp2])).toMatch(
      /PROOF REJECTED: the proof is for a tree of \d+ entries, the checkpoint has \d+/,
    );
    const cpText = readFileSync(cp1, 'utf8');
    const sigAt = cpText.lastIndexOf(' ') + 20; // inside the signature, past the 4-byte key hash
    const forged = cpText.slice(0, sigAt) + (cpText[sigAt] === 'A' ? 'B' : 'A') + cpText.slice(sigAt + 1);
    expect(reject(['--proof', join(docs, 'incl.txt'), '--checkpoint', save('forged.txt', forged)])).toMatch(
      /line 5: the signature of \S+ does not verify \(forged or altered note\).*forged\.txt/,
    );
    const lines = cpText.split('\n');
    const otherRoot = [lines[0], lines[1], Buffer.alloc(32, 7).toString('base64'), ...lines.slice(3)].join(
      '\n',
    );
    expect(reject(['--proof', join(docs, 'incl.txt'), '--checkpoint', save('root.txt', otherRoot)])).toMatch(
      /does not verify/,
    );
    expect(
      reject(['--proof', join(docs, 'incl.txt'), '--checkpoint', save('trunc.txt', cpText.slice(0, 30))]),
    ).toMatch(/does not end with a newline|no blank line/);
    const exported = readFileSync(join(docs, 'export.jsonl'), 'utf8').split('\n');
    const swapped = [exported[1], exported[0], ...exported.slice(2)].join('\n');
    const r = sb.cli([
      'audit',
      'import-verify',
      save('swapped.jsonl', swapped),
      '--checkpoint',
      cp2,
      '--key',
      key,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 1: seq is 1, expected 0.*swapped\.jsonl/);
  });

  it('filters the list by kind, actor, time and text', () => {
    type L = { entries: { kind: string; actor: { uid: number | null } }[] };
    const list = (...args: string[]) => JSON.parse(ok(['audit', 'list', '--json', ...args])) as L;
    expect(list('--kind', 'apply').entries.every((e) => e.kind === 'apply')).toBe(true);
    expect(list('--kind', 'apply').entries.length).toBe(4);
    expect(list('--actor', '0').entries.every((e) => e.actor.uid === 0)).toBe(true);
    expect(list('--actor', '4242').entries).toHaveLength(0);
    expect(list('--since', '2999-01-01').entries).toHaveLength(0);
    expect(list('--until', '2000-01-01').entries).toHaveLength(0);
    expect(list('--since', '2000-01-01', '--text', 'APPLY PLAN').entries.length).toBe(4);
    const bad = sb.cli(['audit', 'list', '--since', 'yesterday-ish', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/since: "yesterday-ish" is not a date/);
  });
});

describe('the witness', () => {
  it('records the checkpoint it saw and catches a rewrite of history at the next CLI call', async () => {
    ok(['query']);
    const seen = JSON.parse(ok(['audit', 'witness', '--json'])) as { size: number; root: string };
    expect(seen.size).toBeGreaterThan(0);

    rewriteAuditHistory(sb.dataDir, 2);
    await sb.restartCore();
    // The core still holds its own earlier checkpoints: it refuses to sign the rewritten log.
    let r = sb.cli(['query']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /AUDIT LOG TAMPERING on unix:path=.*the core refuses to sign a checkpoint: .*not consistent with the checkpoint/,
    );

    // A careful attacker also deletes the core's checkpoints: the core signs, and the witness's proof fails.
    dropAuditCheckpoints(sb.dataDir);
    await sb.restartCore();
    r = sb.cli(['query']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /AUDIT LOG TAMPERING on .*is not an extension of the \d+ entries seen before.*history was rewritten/,
    );
    expect(r.stderr).toMatch(/audit witness --forget/);
    // The record is kept, so it keeps failing; OP_DBUS_WITNESS=off runs one command anyway.
    expect(sb.cli(['query']).code).toBe(1);
    expect(sbCliWithEnv(['query'], { OP_DBUS_WITNESS: 'off' }).code).toBe(0);
    expect(JSON.parse(ok(['audit', 'witness', '--json'])).root).toBe(seen.root);
  });

  it('after --forget, the host is seen afresh', () => {
    ok(['audit', 'witness', '--forget'], { OP_DBUS_WITNESS: 'off' });
    expect(ok(['query']).length).toBeGreaterThan(0);
  });
});
