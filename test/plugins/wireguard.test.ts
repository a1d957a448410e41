import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { decompress } from 'zstd-napi';
import { sandboxExecCommand, sandboxUp, sandboxWipe, type SandboxEnv } from '../../main/devhost/host.js';
import { CLI, CORE_COMMAND, type CliResult } from '../support/sandbox.js';
import { readWireguard, syncConfig } from '../../plugins/wireguard/device.js';

// The wireguard plugin on three nodes, each a development host of its own (its bus, polkitd, core,
// and network namespace), joined by an underlay: a bridge in node a's namespace with a veth to each
// of the others. Each core applies the same mesh document; wireguard-go runs the interfaces. What the
// tests check is read back with `wg` itself (in the node's namespaces, the UAPI directory bound where
// wg looks), `ip` and `ping`, never through the plugin.

const W =
  'mount -t tmpfs tmpfs /run && mkdir /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"';
const UNDERLAY = (i: number): string => `10.99.0.${i + 1}`;
const TUNNEL = (i: number): string => `10.8.0.${i + 1}`;
const NAMES = ['a', 'b', 'c'] as const;

class Node {
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly env: SandboxEnv & Record<string, string>,
    readonly stateDir: string,
  ) {}

  get keyDir(): string {
    return this.env['OP_DBUS_KEY_DIR'] ?? '';
  }

  get netns(): string {
    return this.env['OP_DBUS_NETNS'] ?? '';
  }

  cli(args: string[]): CliResult {
    const r = spawnSync(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...this.env, XDG_STATE_HOME: this.stateDir, OP_DBUS_WITNESS: 'off' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A command in the node's namespaces, as its core runs. */
  exec(argv: string[]): CliResult {
    const { argv: full, env } = sandboxExecCommand(this.dir, argv);
    const [cmd, ...rest] = full as [string, ...string[]];
    const r = spawnSync(cmd, rest, { env, encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** wg itself, reading the node's UAPI sockets (the independent reader). */
  wg(...args: string[]): string {
    const r = this.exec([
      'unshare',
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      W,
      this.env['OP_DBUS_WG_RUNDIR'] ?? '',
      'wg',
      ...args,
    ]);
    if (r.code !== 0) throw new Error(`wg ${args.join(' ')} on ${this.name}: ${r.stderr}`);
    return r.stdout;
  }

  ping(ip: string): boolean {
    return this.exec(['ping', '-c', '1', '-W', '1', ip]).code === 0;
  }

  /** Peer public key → latest handshake (seconds since the epoch, 0 = never), from `wg show`. */
  handshakes(iface = 'wg0'): Map<string, number> {
    return new Map(
      this.wg('show', iface, 'latest-handshakes')
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [k, t] = l.split('\t');
          return [k ?? '', Number(t)];
        }),
    );
  }

  peers(iface = 'wg0'): string[] {
    return this.wg('show', iface, 'peers')
      .trim()
      .split('\n')
      .filter((l) => l !== '');
  }
}

let parent: string;
const nodes: Node[] = [];
let keys: string[] = [];
let docs: string;
/** Preshared keys the tests wrote (base64), which must appear nowhere either. */
const pskForms: string[] = [];

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

interface MeshNode {
  name: string;
  public_key: string;
  endpoint?: string;
  address: string;
}

function meshDoc(members: MeshNode[]): string {
  return JSON.stringify({ version: 1, plugins: { wireguard: { mesh: { wg0: { nodes: members } } } } });
}

function member(i: number): MeshNode {
  return {
    name: NAMES[i] ?? `n${i}`,
    public_key: keys[i] ?? '',
    endpoint: `${UNDERLAY(i)}:51820`,
    address: `${TUNNEL(i)}/24`,
  };
}

function writeDoc(name: string, text: string): string {
  const f = join(docs, name);
  writeFileSync(f, text);
  return f;
}

async function eventually(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const applyOk = (n: Node, file: string): void => {
  const r = n.cli(['apply', '--yes', file]);
  expect(r.code, `${n.name}: ${r.stderr}`).toBe(0);
};

beforeAll(async () => {
  parent = mkdtempSync('/tmp/opdbus-wg-');
  chmodSync(parent, 0o755); // polkitd (its own uid) must reach the bus sockets below it
  docs = join(parent, 'docs');
  run('mkdir', ['-p', docs]);
  for (const name of NAMES) {
    const dir = join(parent, name);
    const env = (await sandboxUp({ dir, coreCommand: CORE_COMMAND })) as SandboxEnv & Record<string, string>;
    nodes.push(new Node(name, dir, env, join(parent, `state-${name}`)));
  }
  // the underlay: a bridge in a's namespace, b and c on veths into it (nothing in this machine's namespace)
  const [a, ...others] = nodes as [Node, Node, Node];
  run('ip', ['-n', a.netns, 'link', 'add', 'br0', 'type', 'bridge']);
  run('ip', ['-n', a.netns, 'address', 'add', `${UNDERLAY(0)}/24`, 'dev', 'br0']);
  run('ip', ['-n', a.netns, 'link', 'set', 'br0', 'up']);
  others.forEach((n, k) => {
    const i = k + 1;
    run('ip', [
      '-n',
      a.netns,
      'link',
      'add',
      `ul${i}`,
      'type',
      'veth',
      'peer',
      'name',
      'ul0',
      'netns',
      n.netns,
    ]);
    run('ip', ['-n', a.netns, 'link', 'set', `ul${i}`, 'master', 'br0', 'up']);
    run('ip', ['-n', n.netns, 'address', 'add', `${UNDERLAY(i)}/24`, 'dev', 'ul0']);
    run('ip', ['-n', n.netns, 'link', 'set', 'ul0', 'up']);
  });
  // each node's key, as an admin makes it
  keys = nodes.map((n) => {
    const r = n.cli(['wireguard', 'genkey', join(n.keyDir, 'wg0.key')]);
    if (r.code !== 0) throw new Error(`genkey on ${n.name}: ${r.stderr}`);
    return r.stdout.trim();
  });
}, 120_000);

afterAll(async () => {
  for (const n of nodes) await sandboxWipe(n.dir).catch(() => undefined);
  if (parent !== undefined) rmSync(parent, { recursive: true, force: true });
}, 120_000);

describe('wireguard mesh on three nodes (wireguard-go, each node its own development host and core)', () => {
  it('genkey writes a root-owned 0600 key, prints its public key, and never overwrites', () => {
    const n = nodes[0] as Node;
    const file = join(n.keyDir, 'wg0.key');
    const st = statSync(file);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o600);
    const before = readFileSync(file, 'utf8');
    // wg itself derives the same public key from the file
    const pub = spawnSync('wg', ['pubkey'], { input: before, encoding: 'utf8' }).stdout.trim();
    expect(pub).toBe(keys[0]);
    const again = n.cli(['wireguard', 'genkey', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists: genkey never overwrites/);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('the same mesh document on every node: all handshake (read by wg) and ping each other', async () => {
    // no `self`: each node finds itself by its own public key, so the document is byte-identical
    const file = writeDoc('mesh.json', meshDoc([0, 1, 2].map(member)));
    for (const n of nodes) applyOk(n, file);
    for (const [i, n] of nodes.entries()) {
      expect(n.peers().sort()).toEqual(keys.filter((_, j) => j !== i).sort());
      const addr = n.exec(['ip', '-j', 'address', 'show', 'dev', 'wg0']).stdout;
      expect(addr).toContain(TUNNEL(i));
    }
    for (const [i, n] of nodes.entries()) {
      for (const j of [0, 1, 2].filter((j) => j !== i)) {
        await eventually(`${n.name} pings ${TUNNEL(j)}`, () => n.ping(TUNNEL(j)));
      }
    }
    for (const [i, n] of nodes.entries()) {
      const hs = n.handshakes();
      for (const j of [0, 1, 2].filter((j) => j !== i)) expect(hs.get(keys[j] ?? '') ?? 0).toBeGreaterThan(0);
    }
  });

  it("query shows each interface's public key; re-plan after apply: no change", () => {
    for (const [i, n] of nodes.entries()) {
      const q = JSON.parse(n.cli(['query', 'wireguard', '--json']).stdout) as {
        plugins: { state: { interfaces: Record<string, { public_key: string }> } }[];
      };
      expect(q.plugins[0]?.state.interfaces['wg0']?.public_key).toBe(keys[i]);
      const plan = n.cli(['plan', join(docs, 'mesh.json')]);
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    }
  });

  it("one code path: the plugin's UAPI read and wg's dump agree; the kernel path (wg syncconf) writes what a re-plan finds in sync", async () => {
    const a = nodes[0] as Node;
    const tools = { uapiDir: a.env['OP_DBUS_WG_RUNDIR'] ?? '', implementation: 'wireguard-go' as const };
    const viaUapi = await readWireguard(tools, 'wg0', 'uapi');
    const viaWg = await readWireguard(tools, 'wg0', 'wg');
    expect(viaUapi).toBeDefined();
    expect(viaUapi).toEqual(viaWg);
    expect(viaUapi?.public_key).toBe(keys[0]);
    expect(viaUapi?.peers.map((p) => p.public_key)).toEqual([...a.peers()].sort());
    // what the kernel module's interfaces get: wg syncconf of the plugin's config text, here over UAPI by wg
    const privateKey = Buffer.from(readFileSync(join(a.keyDir, 'wg0.key'), 'utf8').trim(), 'base64');
    const peers = (viaUapi?.peers ?? []).map((p) => ({
      public_key: p.public_key,
      ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
      allowed_ips: p.allowed_ips,
      ...(p.persistent_keepalive !== undefined ? { persistent_keepalive: p.persistent_keepalive } : {}),
    }));
    const listenPort = viaUapi?.listen_port ?? 0;
    await syncConfig(
      tools,
      'wg0',
      { privateKey, listenPort, peers: peers.filter((p) => p.public_key !== keys[2]) },
      'wg',
    );
    expect(a.peers()).not.toContain(keys[2]);
    await syncConfig(tools, 'wg0', { privateKey, listenPort, peers }, 'wg');
    privateKey.fill(0);
    expect(a.peers().sort()).toEqual(viaUapi?.peers.map((p) => p.public_key));
    expect(await readWireguard(tools, 'wg0', 'uapi')).toEqual(viaUapi);
    const plan = a.cli(['plan', join(docs, 'mesh.json')]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
  });

  it('a peer removed by hand (wg set ... remove): drift reports it, converge puts it back', () => {
    const a = nodes[0] as Node;
    a.wg('set', 'wg0', 'peer', keys[1] ?? '', 'remove');
    expect(a.peers()).not.toContain(keys[1]);
    const drift = a.cli(['drift', '--json']);
    expect(drift.code).toBe(2);
    const paths = (JSON.parse(drift.stdout) as { drift: { path: string }[] }).drift.map((d) => d.path);
    expect(paths).toContain('/plugins/wireguard/mesh/wg0/nodes/1');
    const converge = a.cli(['converge']);
    expect(converge.code, converge.stderr).toBe(0);
    expect(a.peers()).toContain(keys[1]);
  });

  it('key files outside the key directories, symlinks and files others may read are refused, contents never echoed', () => {
    const n = nodes[0] as Node;
    const secret = readFileSync(join(n.keyDir, 'wg0.key'), 'utf8').trim();
    const outside = join(parent, 'outside.key');
    writeFileSync(outside, `${secret}\n`, { mode: 0o600 });
    const link = join(n.keyDir, 'link.key');
    symlinkSync(join(n.keyDir, 'wg0.key'), link);
    const readable = join(n.keyDir, 'readable.key');
    writeFileSync(readable, `${secret}\n`);
    chmodSync(readable, 0o644);
    const shadowLike = join(parent, 'shadow');
    writeFileSync(shadowLike, 'root:$6$not-a-key-but-secret:19000:0:99999:7:::\n', { mode: 0o600 });
    const cases: [string, RegExp][] = [
      [outside, /outside the key directories/],
      [shadowLike, /outside the key directories/],
      [link, /symbolic link: refused/],
      [readable, /mode 0644: group or others may read it/],
    ];
    for (const [file, why] of cases) {
      const doc = writeDoc(
        'bad-key.json',
        JSON.stringify({
          version: 1,
          plugins: { wireguard: { interfaces: { wg9: { private_key_file: file, peers: [] } } } },
        }),
      );
      const r = n.cli(['plan', '--json', doc]);
      expect(r.code, file).toBe(1);
      expect(r.stderr, file).toMatch(why);
      for (const out of [r.stdout, r.stderr]) {
        expect(out).not.toContain(secret);
        expect(out).not.toContain('not-a-key-but-secret');
      }
    }
    unlinkSync(link);
    unlinkSync(readable);
    expect(n.wg('show', 'interfaces').trim()).toBe('wg0');
  });

  it('a malformed public key midway through an apply rolls back every peer already set', () => {
    const a = nodes[0] as Node;
    const r1 = a.cli(['wireguard', 'genkey', join(a.keyDir, 'wg1.key')]);
    expect(r1.code).toBe(0);
    const p1 = spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout.trim();
    const pub1 = spawnSync('wg', ['pubkey'], { input: p1, encoding: 'utf8' }).stdout.trim();
    const pub2 = spawnSync('wg', ['pubkey'], {
      input: spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout,
      encoding: 'utf8',
    }).stdout.trim();
    // the shape of a key, but not 32 bytes of canonical base64: only wg refuses it, during the apply
    const malformed = `${pub2.slice(0, 42)}B=`;
    const peersBefore = a.peers().sort();
    const doc = writeDoc(
      'malformed.json',
      JSON.stringify({
        version: 1,
        plugins: {
          wireguard: {
            // applied first: a new interface with two peers
            interfaces: {
              wg1: {
                private_key_file: 'wg1.key',
                address: ['10.9.0.1/24'],
                peers: [
                  { public_key: pub1, allowed_ips: ['10.9.0.2/32'] },
                  { public_key: pub2, allowed_ips: ['10.9.0.3/32'] },
                ],
              },
            },
            // then the mesh, with one more node and a malformed one after it
            mesh: {
              wg0: {
                nodes: [
                  ...[0, 1, 2].map(member),
                  { name: 'd', public_key: pub1, address: '10.8.0.4/24' },
                  { name: 'e', public_key: malformed, address: '10.8.0.5/24' },
                ],
              },
            },
          },
        },
      }),
    );
    const plan = a.cli(['plan', doc]);
    expect(plan.code, plan.stderr).toBe(2);
    const r = a.cli(['apply', '--yes', doc]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rolled back/);
    expect(r.stderr).toMatch(/interface wg0/);
    // the progress lines show wg1 was made and its peers set before wg0 failed
    expect(r.stderr).toMatch(/wg1 created \(wireguard-go\)/);
    expect(r.stderr).toMatch(/wg1: 3 change\(s\) applied/);
    // wg1 was created with its peers, then removed by the rollback; wg0 is as it was
    expect(a.wg('show', 'interfaces').trim()).toBe('wg0');
    expect(a.peers().sort()).toEqual(peersBefore);
    expect(a.exec(['ip', 'link', 'show', 'wg1']).code).not.toBe(0);
    const audit = a.cli(['audit', 'list', '--json', '--plugin', 'wireguard']).stdout;
    expect(audit).toMatch(/rollback wireguard/);
    expect(a.cli(['plan', join(docs, 'mesh.json')]).code).toBe(0);
  });

  it('a node removed from the document: the others drop it and ping to it fails', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const file = writeDoc('mesh-ab.json', meshDoc([0, 1].map(member)));
    const planned = a.cli(['plan', file]);
    expect(planned.code).toBe(2);
    expect(planned.stdout).toMatch(/- wg0 peer/);
    for (const n of [a, b]) applyOk(n, file);
    expect(a.peers()).toEqual([keys[1]]);
    expect(b.peers()).toEqual([keys[0]]);
    expect(a.ping(TUNNEL(2))).toBe(false);
    expect(b.ping(TUNNEL(2))).toBe(false);
    // c still lists a and b, but neither answers it any more
    expect(c.ping(TUNNEL(0))).toBe(false);
    expect(a.ping(TUNNEL(1))).toBe(true);
  });

  it('a key rotation (new key in its file, its public key in the document) converges', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    unlinkSync(join(b.keyDir, 'wg0.key'));
    const r = b.cli(['wireguard', 'genkey', join(b.keyDir, 'wg0.key')]);
    expect(r.code).toBe(0);
    const rotated = r.stdout.trim();
    expect(rotated).not.toBe(keys[1]);
    const old = keys[1];
    keys[1] = rotated;
    const file = writeDoc('mesh-ab-rotated.json', meshDoc([0, 1].map(member)));
    for (const n of [b, a]) applyOk(n, file);
    expect(b.wg('show', 'wg0', 'public-key').trim()).toBe(rotated);
    expect(a.peers()).toEqual([rotated]);
    expect(a.peers()).not.toContain(old);
    const t0 = Math.floor(Date.now() / 1000) - 1;
    await eventually('a pings b over the rotated key', () => a.ping(TUNNEL(1)));
    await eventually('a handshake with the rotated key', () => (a.handshakes().get(rotated) ?? 0) >= t0);
    for (const n of [a, b]) expect(n.cli(['plan', file]).code).toBe(0);
  });

  it('a preshared key from its file: on the device, shown only as redacted, a new key in the file is a change', () => {
    const a = nodes[0] as Node;
    const pskFile = join(a.keyDir, 'wg2.psk');
    const writePsk = (): string => {
      const psk = spawnSync('wg', ['genpsk'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(pskFile, `${psk}\n`, { mode: 0o600 });
      return psk;
    };
    const first = writePsk();
    pskForms.push(first);
    const doc = writeDoc(
      'psk.json',
      JSON.stringify({
        version: 1,
        plugins: {
          wireguard: {
            interfaces: {
              wg2: {
                private_key_file: 'wg1.key',
                listen_port: 51900,
                mtu: 1380,
                peers: [
                  { public_key: keys[1], preshared_key_file: 'wg2.psk', allowed_ips: ['10.10.0.2/32'] },
                ],
              },
            },
          },
        },
      }),
    );
    applyOk(a, doc);
    expect(a.wg('show', 'wg2', 'preshared-keys').trim()).toBe(`${keys[1]}\t${first}`);
    expect(a.wg('show', 'wg2', 'listen-port').trim()).toBe('51900');
    expect(a.exec(['ip', '-j', 'link', 'show', 'dev', 'wg2']).stdout).toContain('"mtu":1380');
    const q = JSON.parse(a.cli(['query', 'wireguard', '--json']).stdout) as {
      plugins: { state: { interfaces: Record<string, { peers: { preshared_key?: string }[] }> } }[];
    };
    expect(q.plugins[0]?.state.interfaces['wg2']?.peers[0]?.preshared_key).toBe('«redacted»');
    expect(a.cli(['plan', doc]).code).toBe(0);
    const second = writePsk();
    pskForms.push(second);
    const plan = a.cli(['plan', '--json', doc]);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('/plugins/wireguard/interfaces/wg2/peers/0/preshared_key');
    applyOk(a, doc);
    expect(a.wg('show', 'wg2', 'preshared-keys').trim()).toBe(`${keys[1]}\t${second}`);
  });

  it("the private key's base64 and hex appear nowhere: data directory, plan --json, audit list --json, core log", () => {
    for (const n of nodes.slice(0, 2)) secretsNowhere(n, join(docs, 'mesh-ab-rotated.json'));
  });
});

function secretsNowhere(n: Node, doc: string): void {
  const key = Buffer.from(readFileSync(join(n.keyDir, 'wg0.key'), 'utf8').trim(), 'base64');
  const forms = [key.toString('base64'), key.toString('hex')];
  for (const psk of n === nodes[0] ? pskForms : [])
    forms.push(psk, Buffer.from(psk, 'base64').toString('hex'));
  // the device really holds it (so the check below is not vacuous)
  expect(n.wg('show', 'wg0', 'private-key').trim()).toBe(forms[0]);
  const texts: [string, string][] = [
    ['plan --json', n.cli(['plan', '--json', doc]).stdout],
    ['audit list --json', n.cli(['audit', 'list', '--json', '--limit', '1000']).stdout],
    ['query --json', n.cli(['query', '--json']).stdout],
    ['core.log', readFileSync(join(n.dir, 'core.log'), 'utf8')],
  ];
  expect(texts[1]?.[1]).toContain('wireguard');
  for (const file of walk(n.env.OP_DBUS_DATA_DIR)) {
    const raw = readFileSync(file);
    texts.push([file, (file.endsWith('.zst') ? decompress(raw) : raw).toString('latin1')]);
  }
  expect(texts.length).toBeGreaterThan(6);
  for (const [where, text] of texts) for (const f of forms) expect(text.includes(f), where).toBe(false);
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
