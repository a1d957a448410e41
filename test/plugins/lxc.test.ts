import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestSandbox, writeDocument } from '../support/sandbox.js';
import { auditEntries, errorOf, LxcReader, lxcDoc, TEMPLATE } from './lxc-support.js';

// The lxc plugin on real LXC 5 in one development host: containers unpacked from the host's busybox
// template and started by the core (in the host's network namespace, on a Linux bridge made there
// with `ip link`), every change read back with LXC's own tools (lxc-ls, lxc-info, lxc-attach), the
// kernel's cgroup files and /proc, never through the plugin. Containers are reused across the tests.

let sb: TestSandbox;
let lxc: LxcReader;
let docs: string;
let mounts: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  lxc = new LxcReader(sb);
  docs = join(sb.dir, '..', 'docs');
  mounts = join(sb.dir, 'lxc-mounts');
  // the bridge the containers join, in the host's network namespace (no net plugin needed for a Linux bridge)
  lxc.exec('ip', 'link', 'add', 'br-test', 'type', 'bridge');
  lxc.exec('ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'br-test');
  lxc.exec('ip', 'link', 'set', 'br-test', 'up');
  mkdirSync(join(mounts, 'data'), { recursive: true });
  writeFileSync(join(mounts, 'data', 'hello.txt'), 'from the host\n');
}, 120_000);
afterAll(async () => {
  await sb?.stop();
}, 120_000);

const web = (
  o: { memory?: string; hostname?: string; ip?: string; mp?: boolean; onboot?: boolean } = {},
) => ({
  id: '100',
  veth: 'vi100',
  bridge: 'br-test',
  properties: {
    template: TEMPLATE,
    hostname: o.hostname ?? 'web-1',
    memory: o.memory ?? '256',
    cores: '1',
    network_type: 'bridge',
    ip: o.ip ?? '10.77.0.10/24',
    gw: '10.77.0.1',
    nameserver: '10.77.0.1',
    ...(o.onboot !== undefined ? { onboot: o.onboot } : {}),
    ...(o.mp === true ? { mp0: { volume: join(mounts, 'data'), mp: '/srv/data', ro: true } } : {}),
  },
});
const quiet = { id: '101', properties: { template: TEMPLATE, hostname: 'quiet', memory: 128 } };
const parked = { id: '102', properties: { template: TEMPLATE, hostname: 'parked', state: 'stopped' } };

function apply(name: string, section: Record<string, unknown>, ...flags: string[]): void {
  const r = sb.cli(['apply', writeDocument(docs, name, lxcDoc(section)), '--yes', ...flags]);
  expect(r.code, r.stderr).toBe(0);
}

describe('lxc containers on real LXC', () => {
  it('lists the templates of the storages the core is configured with', () => {
    const r = sb.cli(['lxc', 'templates', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { templates } = JSON.parse(r.stdout) as {
      templates: { id: string; size: number; format: string }[];
    };
    expect(templates).toEqual([{ id: TEMPLATE, size: expect.any(Number) as unknown, format: 'zst' }]);
    expect(templates[0]?.size).toBeGreaterThan(100_000);
    expect(sb.cli(['lxc', 'templates']).stdout).toMatch(/local:vztmpl\/busybox-rootfs_amd64\.tar\.zst\s+zst/);
  });

  it("plans the original project's multi-container example: per-container errors until its bridges are declared", () => {
    const example = JSON.parse(
      readFileSync(
        join(
          import.meta.dirname,
          '../../../shared/fixtures/original-examples/example-multi-container-state.json',
        ),
        'utf8',
      ),
    ) as {
      plugins: { lxc: { containers: { id: string; properties: Record<string, string> }[] }; net: unknown };
    };
    const file = writeDocument(docs, 'example.json', lxcDoc(example.plugins.lxc));
    const r = sb.cli(['plan', file, '--json']);
    expect(r.code).toBe(1);
    const e = errorOf(r.stdout) as {
      details?: { problems: { pointer: string; message: string; line: number }[] };
    };
    const problems = e.details?.problems ?? [];
    for (const [i, id] of ['100', '101', '102'].entries()) {
      const mine = problems.filter((p) => p.message.startsWith(`container ${id}:`));
      expect(mine.map((p) => p.pointer).sort(), id).toEqual([
        `/plugins/lxc/containers/${i}/bridge`,
        `/plugins/lxc/containers/${i}/properties/template`,
      ]);
      expect(mine.every((p) => p.line > 0)).toBe(true);
    }
    expect(problems.find((p) => p.pointer.endsWith('0/bridge'))?.message).toMatch(
      /bridge "mesh" is neither declared in the document's net section nor on the host/,
    );
    expect(problems.find((p) => p.pointer.endsWith('0/properties/template'))?.message).toMatch(
      /unknown storage "local-btrfs"/,
    );
    // the containers themselves, on this host's storage: only the bridges are missing
    const local = example.plugins.lxc.containers.map((c) => ({
      ...c,
      properties: { ...c.properties, template: TEMPLATE },
    }));
    const r2 = sb.cli([
      'plan',
      writeDocument(docs, 'example-local.json', lxcDoc({ containers: local })),
      '--json',
    ]);
    const problems2 =
      (errorOf(r2.stdout) as { details?: { problems: { pointer: string }[] } }).details?.problems ?? [];
    expect(problems2.map((p) => p.pointer)).toEqual(
      [0, 1, 2].map((i) => `/plugins/lxc/containers/${i}/bridge`),
    );
  });

  it("plans the example's containers once a net plugin declares their bridges (ctx.after.net)", async () => {
    const example = JSON.parse(
      readFileSync(
        join(
          import.meta.dirname,
          '../../../shared/fixtures/original-examples/example-multi-container-state.json',
        ),
        'utf8',
      ),
    ) as {
      plugins: { lxc: { containers: { id: string; properties: Record<string, string> }[] }; net: unknown };
    };
    const builtIn = (
      JSON.parse(sb.cli(['plugin', 'list', '--json']).stdout) as { plugins: { name: string }[] }
    ).plugins.some((p) => p.name === 'net');
    if (!builtIn) {
      // no net plugin on this branch yet: a stand-in that accepts any net section and changes nothing
      const dir = join(sb.dir, '..', 'plugins', 'net');
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'plugin.toml'),
        '[plugin]\nname = "net"\nversion = "0.0.1"\nentry = "index.mjs"\n',
      );
      writeFileSync(
        join(dir, 'index.mjs'),
        'const ok = async () => ({ available: true });\nexport default { schema: { type: "object" }, plugin: { available: ok, query: async () => ({}), diff: async () => ({ resources: [] }), checkpoint: async () => ({}), apply: async () => ({ changed: 0 }), verify: async () => ({ drift: [] }), rollback: async () => undefined } };\n',
      );
      await sb.restartCore({ OP_DBUS_PLUGIN_PATH: join(sb.dir, '..', 'plugins') });
    }
    try {
      const local = example.plugins.lxc.containers.map((c) => ({
        ...c,
        id: `9${c.id}`,
        properties: { ...c.properties, template: TEMPLATE },
      }));
      const text = JSON.stringify({
        version: 1,
        plugins: { lxc: { containers: local }, net: example.plugins.net },
      });
      const r = sb.cli(['plan', writeDocument(docs, 'example-net.json', text), '--json']);
      if (builtIn) {
        expect(r.stdout).not.toMatch(/neither declared in the document's net section/);
        return;
      }
      expect(r.code, r.stdout + r.stderr).toBe(2);
      const plan = JSON.parse(r.stdout) as {
        diffs: { plugin: string; resources: { id: string; action: string }[] }[];
      };
      expect(plan.diffs.find((d) => d.plugin === 'lxc')?.resources.map((x) => [x.id, x.action])).toEqual([
        ['9100', 'create'],
        ['9101', 'create'],
        ['9102', 'create'],
      ]);
    } finally {
      if (!builtIn) await sb.restartCore();
    }
  });

  it('creates containers from the busybox template; LXC, the cgroup and /proc see each setting', () => {
    apply('create.json', { containers: [web(), quiet, parked] });
    const ls = lxc.ls();
    expect(ls['100']).toMatchObject({ state: 'RUNNING', ipv4: '10.77.0.10', unprivileged: 'true' });
    expect(ls['101']).toMatchObject({ state: 'RUNNING', unprivileged: 'true' });
    expect(ls['102']).toMatchObject({ state: 'STOPPED' });
    expect(lxc.attach('100', 'hostname')).toBe('web-1');
    expect(lxc.attach('100', 'ip', '-4', 'addr', 'show', 'eth0')).toMatch(/inet 10\.77\.0\.10\/24/);
    expect(lxc.attach('100', 'cat', '/etc/resolv.conf')).toBe('nameserver 10.77.0.1');
    // the bridge on the host holds the container's host end, named as the document says
    expect(lxc.exec('ip', '-o', 'link', 'show', 'master', 'br-test')).toMatch(/vi100@/);
    // reachable through the bridge from the host's namespace
    expect(lxc.exec('ping', '-c', '1', '-W', '2', '10.77.0.10')).toMatch(/1 received|1 packets received/);
    expect(lxc.memoryLimit('100')).toBe(256 * 1024 * 1024);
    expect(lxc.memoryLimit('101')).toBe(128 * 1024 * 1024);
    // unprivileged (the default): root inside is uid 100000 on the host
    expect(lxc.hostUidOfRoot('100')).toBe(100000);
    expect(lxc.attach('100', 'id', '-u')).toBe('0');
  });

  it('re-plans from a fresh core with no change', async () => {
    await sb.restartCore();
    const r = sb.cli([
      'plan',
      writeDocument(docs, 'create.json', lxcDoc({ containers: [web(), quiet, parked] })),
    ]);
    expect(r.stdout).toMatch(/no changes/);
    expect(r.code).toBe(0);
  });

  it('changes memory and hostname live, and address and a mount point by a restart', () => {
    const before = lxc.initPid('101');
    apply('live.json', {
      containers: [
        web(),
        { ...quiet, properties: { ...quiet.properties, memory: '192', hostname: 'quieter' } },
        parked,
      ],
    });
    expect(lxc.initPid('101')).toBe(before); // live: the same init
    expect(lxc.memoryLimit('101')).toBe(192 * 1024 * 1024);
    expect(lxc.attach('101', 'hostname')).toBe('quieter');
    apply('restart.json', {
      containers: [web({ ip: '10.77.0.11/24', mp: true, memory: '320' }), quiet, parked],
    });
    expect(lxc.ls()['100']).toMatchObject({ state: 'RUNNING', ipv4: '10.77.0.11' });
    expect(lxc.attach('100', 'ip', '-4', 'addr', 'show', 'eth0')).toMatch(/inet 10\.77\.0\.11\/24/);
    expect(lxc.attach('100', 'cat', '/srv/data/hello.txt')).toBe('from the host');
    // read-only inside
    expect(() => lxc.attach('100', 'touch', '/srv/data/x')).toThrow(/Read-only/i);
    expect(lxc.memoryLimit('100')).toBe(320 * 1024 * 1024);
    expect(lxc.memoryLimit('101')).toBe(128 * 1024 * 1024);
  });

  it('reports a container stopped out of band in verify and drift; converge starts it again', () => {
    const section = { containers: [web({ ip: '10.77.0.11/24', mp: true, memory: '320' }), quiet, parked] };
    const file = writeDocument(docs, 'restart.json', lxcDoc(section));
    lxc.exec('lxc-stop', '-P', lxc.path, '-n', '101', '-k');
    expect(lxc.ls()['101']?.state).toBe('STOPPED');
    const verify = sb.cli(['verify', file, '--json']);
    expect(verify.code).toBe(2);
    expect(JSON.parse(verify.stdout)).toMatchObject({
      inSync: false,
      drift: [{ path: '/plugins/lxc/containers/1/properties/state', expected: 'running', actual: 'stopped' }],
    });
    const drift = sb.cli(['drift', '--json']);
    expect(drift.code).toBe(2);
    expect(JSON.parse(drift.stdout)).toMatchObject({
      drift: [{ path: '/plugins/lxc/containers/1/properties/state', actual: 'stopped' }],
    });
    // reconfigured out of band: the memory limit in its config file
    const config = join(lxc.path, '102', 'config');
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        /memory\.limit_in_bytes = \d+/,
        'memory.limit_in_bytes = 67108864',
      ),
    );
    const again = JSON.parse(sb.cli(['drift', '--json']).stdout) as { drift: { path: string }[] };
    // memory and swap both: swap is what memory+swap (memsw) leaves above memory, and that grew
    expect(again.drift.map((d) => d.path)).toEqual(
      expect.arrayContaining([
        '/plugins/lxc/containers/1/properties/state',
        '/plugins/lxc/containers/2/properties/memory',
      ]),
    );
    const converge = sb.cli(['converge']);
    expect(converge.code, converge.stderr).toBe(0);
    expect(lxc.ls()['101']?.state).toBe('RUNNING');
    expect(sb.cli(['drift']).code).toBe(0);
  });

  it('destroys only with confirmation (checked by the core, even over raw D-Bus), and last', async () => {
    const section = {
      containers: [
        web({ ip: '10.77.0.11/24', mp: true, memory: '320', onboot: true }),
        quiet,
        { id: '102', properties: { state: 'absent' } },
      ],
    };
    const file = writeDocument(docs, 'destroy.json', lxcDoc(section));
    const plan = JSON.parse(sb.cli(['plan', file, '--json']).stdout) as { irreversible: string[] };
    expect(plan.irreversible).toEqual(['lxc/102']);
    const refused = sb.cli(['apply', file, '--yes', '--json']);
    expect(refused.code).toBe(1);
    expect(errorOf(refused.stdout)).toMatchObject({
      code: 'NotConfirmed',
      message: expect.stringContaining('lxc/102') as unknown,
    });
    const client = await sb.client();
    try {
      const p = await client.call('Plan', { document: readFileSync(file, 'utf8') });
      await client.call('Approve', { planId: p.id, hash: p.hash });
      const raw = sb.busctlCore('Apply', { planId: p.id, hash: p.hash });
      expect(raw.status).not.toBe(0);
      expect(raw.stderr).toMatch(/not confirmed: lxc\/102/);
    } finally {
      client.close();
    }
    expect(Object.keys(lxc.ls()).sort()).toEqual(['100', '101', '102']);
    expect(lxc.autostartInConfig('100')).toBe('0');
    const ok = sb.cli(['apply', file, '--yes', '--confirm-irreversible']);
    expect(ok.code, ok.stderr).toBe(0);
    // the reversible change (onboot) ran before the irreversible destroy
    expect(ok.stderr.indexOf('container 100 changed')).toBeLessThan(
      ok.stderr.indexOf('container 102 destroyed'),
    );
    expect(Object.keys(lxc.ls()).sort()).toEqual(['100', '101']);
    expect(lxc.autostartInConfig('100')).toBe('1');
    expect(auditEntries(sb, '--kind', 'apply').at(0)?.summary).toMatch(/irreversible, confirmed: lxc\/102/);
  });

  it('names each bad input with file, line and pointer', () => {
    const base = { id: '300', properties: { template: TEMPLATE } };
    const cases: [string, Record<string, unknown>[], string, RegExp][] = [
      [
        'unknown template',
        [{ id: '300', properties: { template: 'local:vztmpl/nope.tar.zst' } }],
        '/plugins/lxc/containers/0/properties/template',
        /no file nope\.tar\.zst in storage local/,
      ],
      [
        'unknown storage',
        [{ id: '300', properties: { template: 'tank:vztmpl/a.tar.zst' } }],
        '/plugins/lxc/containers/0/properties/template',
        /unknown storage "tank"/,
      ],
      [
        'memory "lots"',
        [{ ...base, properties: { ...base.properties, memory: 'lots' } }],
        '/plugins/lxc/containers/0/properties/memory',
        /memory in MiB/,
      ],
      [
        'cores 0',
        [{ ...base, properties: { ...base.properties, cores: 0 } }],
        '/plugins/lxc/containers/0/properties/cores',
        /cores: a whole number of at least 1/,
      ],
      ['duplicate ids', [base, { ...base }], '/plugins/lxc/containers/1/id', /duplicate id/],
      [
        'veth over 15 bytes',
        [{ ...base, veth: 'veth-far-too-long', bridge: 'br-test' }],
        '/plugins/lxc/containers/0/veth',
        /1-15 bytes/,
      ],
      [
        'bad hostname',
        [{ ...base, properties: { ...base.properties, hostname: 'not_a host' } }],
        '/plugins/lxc/containers/0/properties/hostname',
        /not a hostname/,
      ],
      [
        'mount outside the roots',
        [{ ...base, properties: { ...base.properties, mp0: { volume: '/etc', mp: '/mnt/etc' } } }],
        '/plugins/lxc/containers/0/properties/mp0/volume',
        /outside the allowed host roots/,
      ],
    ];
    for (const [what, containers, pointer, message] of cases) {
      const text = lxcDoc({ containers });
      const file = writeDocument(docs, 'bad.json', text);
      const r = sb.cli(['plan', file, '--json']);
      expect(r.code, what).toBe(1);
      const e = errorOf(r.stdout);
      expect(e.message, what).toMatch(message);
      expect(e.where, what).toMatchObject({ file, pointer });
      // the line is the one the pointer's key is on
      const line = text.split('\n')[(e.where?.line ?? 0) - 1] ?? '';
      expect(line, what).toContain(`"${pointer.split('/').pop() ?? ''}"`);
    }
  });
});
