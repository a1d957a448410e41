import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HALT_POINTS } from '../../main/service/engine/halt-points.js';
import { TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';
import { auditEntries, LxcReader, lxcDoc, TEMPLATE } from './lxc-support.js';

// kill -9 of the core at every step boundary the engine lists (HALT_POINTS) of an apply that creates
// three containers (one running) and modifies a fourth (hostname and onboot of a stopped one). The
// failing variant (for the rollback points) is a real LXC failure: the third container's veth name
// is taken on the host by then, so its lxc-start fails and the apply rolls back. After a fresh core
// has recovered, LXC's own tools say what exists and LXC's config file what the fourth holds: all
// new or all old, never half, and the audit log says which.

let sb: TestSandbox;
let lxc: LxcReader;
let docs: string;

const base = {
  id: '400',
  properties: { template: TEMPLATE, hostname: 'base-old', state: 'stopped', onboot: false },
};
const start = { containers: [base] };

function next(round: number, fail: boolean): Record<string, unknown> {
  return {
    containers: [
      { id: '401', properties: { template: TEMPLATE, hostname: `new-a-${round}`, network_type: 'none' } },
      { id: '402', properties: { template: TEMPLATE, hostname: `new-b-${round}`, state: 'stopped' } },
      {
        id: '403',
        veth: fail ? 'vbusy' : 'vi403',
        bridge: 'br-test',
        properties: { template: TEMPLATE, hostname: `new-c-${round}`, state: fail ? 'running' : 'stopped' },
      },
      { id: '400', properties: { ...base.properties, hostname: `base-${round}`, onboot: true } },
    ],
  };
}

/** Back to the start: the three new ones destroyed (confirmed), the fourth as it was. */
const reset = {
  containers: [base, ...['401', '402', '403'].map((id) => ({ id, properties: { state: 'absent' } }))],
};

/** What the host holds, as LXC says: its containers, and the fourth's name and onboot in its config. */
function host(): { containers: string[]; base: { hostname: string; onboot: string } } {
  const text = readFileSync(join(lxc.path, '400', 'config'), 'utf8');
  const last = (key: string): string =>
    [...text.matchAll(new RegExp(`^${key.replace(/\./g, '\\.')}\\s*=\\s*(\\S+)`, 'gm'))].at(-1)?.[1] ?? '';
  return {
    containers: Object.keys(lxc.ls()).sort(),
    base: { hostname: last('lxc.uts.name'), onboot: last('lxc.start.auto') },
  };
}

beforeAll(async () => {
  sb = await TestSandbox.start();
  lxc = new LxcReader(sb);
  docs = join(sb.dir, '..', 'docs');
  lxc.exec('ip', 'link', 'add', 'br-test', 'type', 'bridge');
  lxc.exec('ip', 'link', 'set', 'br-test', 'up');
  // the name the failing variant's third container wants for its veth: taken on the host
  lxc.exec('ip', 'link', 'add', 'vbusy', 'type', 'bridge');
  const r = sb.cli(['apply', writeDocument(docs, 'start.json', lxcDoc(start)), '--yes']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await sb?.stop();
}, 120_000);

/** Starts an apply, kills the core where it halts, starts a fresh one; returns the plan hash. */
async function crashAt(halt: string, text: string): Promise<string> {
  const marker = join(sb.dataDir, 'halted-at');
  rmSync(marker, { force: true });
  await sb.restartCore({ OP_DBUS_TEST_HALT_AT: halt });
  const apply = sb.cliBackground(['apply', writeDocument(docs, 'crash.json', text), '--yes']);
  let stderr = '';
  apply.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  apply.on('exit', () => (exited = true));
  try {
    await waitFor(
      `the core to halt at ${halt}`,
      () => {
        if (exited && !existsSync(marker))
          throw new Error(`the apply ended without reaching ${halt}:\n${stderr}`);
        return existsSync(marker);
      },
      60_000,
    );
    process.kill(sb.corePid() as number, 'SIGKILL');
    await waitFor('the core to die', () => sb.corePid() === undefined);
    await sb.restartCore();
  } finally {
    apply.kill('SIGKILL');
  }
  const hash = /Plan hash: ([0-9a-f]{64})/.exec(stderr)?.[1];
  expect(hash, stderr).toBeDefined();
  return hash as string;
}

describe('kill -9 of the core at each step boundary of an apply of four containers', () => {
  // one plugin, no irreversible change: each point once (after-irreversible is never reached)
  const cases = HALT_POINTS.filter((p) => p.name !== 'after-irreversible');
  let round = 0;
  for (const c of cases) {
    it(`at ${c.name} (${c.path}): all four changed or none, and the audit log says which`, async () => {
      const before = host();
      expect(before).toEqual({ containers: ['400'], base: { hostname: 'base-old', onboot: '0' } });
      round++;
      const hash = await crashAt(c.name, lxcDoc(next(round, c.path === 'rollback')));
      const now = host();
      const entries = auditEntries(sb);
      const claims = entries.filter(
        (e) =>
          (e.kind === 'apply' && e.summary.startsWith(`apply plan ${hash}: applied and verified`)) ||
          (e.kind === 'recovery' && e.summary.includes(`${hash} was fully applied`)),
      );
      if (now.containers.length > 1 || now.base.hostname !== 'base-old') {
        expect(now).toEqual({
          containers: ['400', '401', '402', '403'],
          base: { hostname: `base-${round}`, onboot: '1' },
        });
        expect(lxc.ls()['401']?.state).toBe('RUNNING');
        expect(claims.length, `no audit entry says plan ${hash} was applied`).toBeGreaterThan(0);
        const r = sb.cli([
          'apply',
          writeDocument(docs, 'reset.json', lxcDoc(reset)),
          '--yes',
          '--confirm-irreversible',
        ]);
        expect(r.code, r.stderr).toBe(0);
      } else {
        expect(now).toEqual(before);
        expect(claims, 'an entry claims a change the host does not show').toEqual([]);
        expect(entries.some((e) => e.summary.includes(hash) && /rolled back|rollback/.test(e.summary))).toBe(
          true,
        );
        // nothing of the new containers is left under the LXC path
        expect(['401', '402', '403'].filter((id) => existsSync(join(lxc.path, id)))).toEqual([]);
      }
      if (c.path === 'apply' && ['after-journal', 'after-call'].includes(c.name)) {
        // before verify: recovery rolled back
        expect(now.containers).toEqual(['400']);
      }
    }, 120_000);
  }
});
