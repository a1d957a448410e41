import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../main/common/contract/index.js';
import { HALT_POINTS } from '../../main/service/engine/halt-points.js';
import { ROOT, TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// kill -9 of the core at every step boundary the engine lists (HALT_POINTS), during a two-plugin
// apply: hostname (the built-in, on the real hostnamed) and `ledger`, a probe plugin installed from
// OP_DBUS_PLUGIN_PATH after it. The core halts there (OP_DBUS_TEST_HALT_AT, after writing
// `halted-at`), the test kills it with SIGKILL and starts a fresh core, which recovers. Then the host
// is read independently (busctl for hostnamed, the ledger's file on disk) and held against the audit
// log: changed ⇒ an entry says that plan was applied; unchanged ⇒ no entry claims it was; never half.
let sb: TestSandbox;
let docs: string;
let ledgerRoot: string;
let pluginPath: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  const base = join(sb.dir, '..');
  docs = join(base, 'docs');
  ledgerRoot = join(base, 'ledger-host');
  pluginPath = join(base, 'plugins');
  mkdirSync(ledgerRoot, { recursive: true });
  // a community plugin runs isolated, as nobody: it writes only its manifest's [isolation] write
  chownSync(ledgerRoot, 65534, 65534);
  mkdirSync(join(pluginPath, 'ledger'), { recursive: true });
  copyFileSync(join(ROOT, 'test/support/probe-plugin.mjs'), join(pluginPath, 'ledger', 'index.mjs'));
  writeFileSync(
    join(pluginPath, 'ledger', 'plugin.toml'),
    `[plugin]\nname = "ledger"\nversion = "0.1.0"\nentry = "index.mjs"\n\n[dependencies]\nplugins = ["hostname"]\n\n[isolation]\nwrite = ["${ledgerRoot}"]\n\n[config]\nroot = "${ledgerRoot}"\n`,
  );
  await sb.restartCore(coreEnv());
});
afterAll(async () => {
  await sb?.stop();
});

const coreEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  OP_DBUS_PLUGIN_PATH: pluginPath,
  ...extra,
});

/** hostname and ledger both set to `value`; `fail` makes ledger fail after writing, so the apply rolls back. */
function doc(value: string, o: { fail?: boolean } = {}): string {
  return JSON.stringify({
    version: 1,
    plugins: {
      hostname: { location: value, pretty_hostname: `Host at ${value}` },
      ledger: {
        values: { entry: value, sealed: value },
        irreversible: ['sealed'],
        ...(o.fail === true ? { fail_apply: true } : {}),
      },
    },
  });
}

/** The host as the components themselves say it: hostnamed through busctl, the ledger's file. */
function host(): { location: string; ledger: string | undefined } {
  const file = join(ledgerRoot, 'ledger.json');
  const ledger = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>)['entry']
    : undefined;
  return { location: sb.hostnameProperty('Location'), ledger };
}

interface Entry {
  seq: number;
  kind: string;
  summary: string;
}

function auditEntries(): Entry[] {
  return (JSON.parse(sb.cli(['audit', 'list', '--limit', '200', '--json']).stdout) as { entries: Entry[] })
    .entries;
}

/** Starts an apply of text, kills the core where it halts, starts a fresh one; returns the plan hash. */
async function crashAt(halt: string, text: string): Promise<string> {
  const haltMarker = join(sb.dataDir, 'halted-at');
  rmSync(haltMarker, { force: true });
  await sb.restartCore(coreEnv({ OP_DBUS_TEST_HALT_AT: halt }));
  const file = writeDocument(docs, 'crash.json', text);
  const apply = sb.cliBackground(['apply', file, '--yes', '--confirm-irreversible']);
  let stderr = '';
  apply.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  apply.on('exit', () => (exited = true));
  try {
    await waitFor(`the core to halt at ${halt}`, () => {
      if (exited && !existsSync(haltMarker))
        throw new Error(`the apply ended without reaching ${halt}:\n${stderr}`);
      return existsSync(haltMarker);
    });
    expect(readFileSync(haltMarker, 'utf8')).toBe(halt.includes('#') ? halt : `${halt}#1`);
    const pid = sb.corePid() as number;
    process.kill(pid, 'SIGKILL');
    await waitFor('the core to die', () => sb.corePid() === undefined);
    await sb.restartCore(coreEnv());
  } finally {
    apply.kill('SIGKILL');
  }
  const hash = /Plan hash: ([0-9a-f]{64})/.exec(stderr)?.[1];
  expect(hash, stderr).toBeDefined();
  return hash as string;
}

describe('kill -9 of the core at each step boundary of a two-plugin apply', () => {
  const start = 'Original Rack';

  beforeAll(() => {
    const r = sb.cli([
      'apply',
      writeDocument(docs, 'start.json', doc(start)),
      '--yes',
      '--confirm-irreversible',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(host()).toEqual({ location: start, ledger: start });
  });

  // each point, and for points reached once per plugin its second time too (only the ledger has
  // irreversible changes, so that point is reached once)
  const cases = HALT_POINTS.flatMap((p) =>
    [1, 2]
      .filter((n) => n === 1 || (p.perPlugin && p.name !== 'after-irreversible'))
      .map((n) => ({ ...p, halt: n === 1 ? p.name : `${p.name}#${n}` })),
  );
  let round = 0;
  for (const c of cases) {
    it(`at ${c.halt} (${c.path}): the host is all old or all new, and the audit log says which`, async () => {
      const before = host();
      const value = `Rack ${++round}`;
      const hash = await crashAt(c.halt, doc(value, { fail: c.path === 'rollback' }));
      const now = host();
      const entries = auditEntries();
      const claims = entries.filter(
        (e) =>
          (e.kind === 'apply' && e.summary.startsWith(`apply plan ${hash}: applied and verified`)) ||
          (e.kind === 'recovery' && e.summary.includes(`${hash} was fully applied`)),
      );
      if (now.location === value || now.ledger === value) {
        expect(now).toEqual({ location: value, ledger: value });
        expect(claims.length, `no audit entry says plan ${hash} was applied`).toBeGreaterThan(0);
      } else {
        expect(now).toEqual(before);
        expect(claims, 'an entry claims a change the host does not show').toEqual([]);
        expect(entries.some((e) => e.summary.includes(hash) && /rolled back|rollback/.test(e.summary))).toBe(
          true,
        );
      }
      if (c.path === 'rollback') expect(now).toEqual(before);
      expect(sb.cli(['audit', 'verify']).code).toBe(0);
      // the journal is finished: the next apply runs
      const again = sb.cli([
        'apply',
        writeDocument(docs, 'again.json', doc(now.location)),
        '--yes',
        '--confirm-irreversible',
      ]);
      expect(again.code, again.stderr).toBe(0);
    });
  }

  it('a second apply while one runs is refused with ApplyInProgress', async () => {
    const haltMarker = join(sb.dataDir, 'halted-at');
    rmSync(haltMarker, { force: true });
    await sb.restartCore(coreEnv({ OP_DBUS_TEST_HALT_AT: 'after-call' }));
    const location = sb.hostnameProperty('Location');
    const first = sb.cliBackground([
      'apply',
      writeDocument(docs, 'first.json', doc('First')),
      '--yes',
      '--confirm-irreversible',
    ]);
    try {
      await waitFor('the first apply to be under way', () => existsSync(haltMarker));
      const client = await sb.client();
      try {
        const plan = await client.call('Plan', { document: doc('Second') });
        await client.call('Approve', { planId: plan.id, hash: plan.hash });
        const err = await client
          .call('Apply', { planId: plan.id, hash: plan.hash, confirmIrreversible: plan.irreversible })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OpError);
        expect((err as OpError).code).toBe('ApplyInProgress');
      } finally {
        client.close();
      }
      const cli = sb.cli([
        'apply',
        writeDocument(docs, 'third.json', doc('Third')),
        '--yes',
        '--confirm-irreversible',
      ]);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/ApplyInProgress/);
    } finally {
      first.kill('SIGKILL');
      process.kill(sb.corePid() as number, 'SIGKILL');
      await waitFor('the core to die', () => sb.corePid() === undefined);
      await sb.restartCore(coreEnv());
    }
    expect(sb.hostnameProperty('Location')).toBe(location);
  });
});
