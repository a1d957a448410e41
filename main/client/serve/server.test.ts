import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  OpError,
  type ApplyProgress,
  type MethodName,
  type SignalName,
  type Stats,
  type WitnessReport,
} from '../../common/contract/index.js';
import { startConsoleServer, type ConsoleServer, type CoreLink } from './server.js';

// The server wired to a fake core: the HTTP and WebSocket guards end to end, without D-Bus.
// test/serve/serve.test.ts and e2e/ run it against the real core.

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

class FakeCore implements CoreLink {
  calls: { method: MethodName; request: unknown; client?: string | undefined }[] = [];
  readonly listeners = new Map<SignalName, (payload: unknown) => void>();

  call(method: MethodName, request: unknown, opts: { client?: string } = {}): Promise<never> {
    this.calls.push({ method, request, ...(opts.client !== undefined ? { client: opts.client } : {}) });
    if (method === 'Apply') return Promise.reject(new OpError('StalePlan', 'the host changed; plan again'));
    if (method === 'Query') return Promise.reject(new Error('bus went away'));
    return Promise.resolve({ schema: { type: 'object' } } as never);
  }

  onSignal(name: SignalName, listener: (payload: never) => void): Promise<() => void> {
    this.listeners.set(name, listener as (payload: unknown) => void);
    return Promise.resolve(() => this.listeners.delete(name));
  }

  emit(name: 'ApplyProgress', p: ApplyProgress): void;
  emit(name: 'Metrics', s: Stats): void;
  emit(name: SignalName, payload: unknown): void {
    this.listeners.get(name)?.(payload);
  }
}

const WITNESS: WitnessReport = {
  status: 'tampering',
  endpoint: 'unix:path=/run/fake',
  reason: 'AUDIT LOG TAMPERING on unix:path=/run/fake: history was rewritten',
};

let server: ConsoleServer;
let core: FakeCore;
let witnessRuns = 0;
const refusals: string[] = [];

let dir: string;

function start(sessionLimits?: { idleMs: number; maxAgeMs: number }): Promise<ConsoleServer> {
  return startConsoleServer({
    port: 0,
    rendererDir: join(dir, 'renderer'),
    core,
    witness: () => {
      witnessRuns++;
      return Promise.resolve(WITNESS);
    },
    verifyInclusion: (seq) => Promise.resolve({ seq, verified: false, reason: 'not in this test' }),
    log: (l) => refusals.push(l),
    ...(sessionLimits !== undefined ? { sessionLimits } : {}),
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-serve-'));
  mkdirSync(join(dir, 'renderer'));
  writeFileSync(join(dir, 'renderer', 'index.html'), '<!doctype html><title>console</title>');
  core = new FakeCore();
  refusals.length = 0;
  witnessRuns = 0;
  server = await start();
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the browser holds after opening the one-time URL: the cookie, and the secret only its page knows. */
interface Login {
  cookie: string;
  secret: string;
  /** The subprotocols the console's page offers. */
  protocols: string[];
}

async function login(path = '/'): Promise<Login> {
  const token = new URL(server.url).searchParams.get('token') ?? '';
  const r = await get(server.port, `${path}?token=${token}`);
  expect(r.status).toBe(303);
  const location = String(r.headers['location']);
  expect(location).toMatch(/^\/#session=[0-9a-f]{64}$/);
  const setCookie = r.headers['set-cookie']?.[0] ?? '';
  expect(setCookie).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
  const secret = location.slice('/#session='.length);
  return {
    cookie: setCookie.split(';')[0] ?? '',
    secret,
    protocols: ['opdbus.relay.v1', `opdbus.session.${secret}`],
  };
}

function connect(
  headers: Record<string, string>,
  protocols: string[] = ['opdbus.relay.v1'],
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, protocols, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString('utf8')))));
}

describe('op-dbus serve: HTTP', () => {
  it('prints a URL on 127.0.0.1 with a 64-hex token', () => {
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[0-9a-f]{64}$`));
  });

  it('serves nothing without a session, and the token works once', async () => {
    expect((await get(server.port, '/')).status).toBe(403);
    expect((await get(server.port, `/?token=${'0'.repeat(64)}`)).status).toBe(403);
    const { cookie } = await login();
    const page = await get(server.port, '/', { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>console</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const again = await get(server.port, server.url.slice(server.url.indexOf('/?')));
    expect(again.status).toBe(403);
    expect(again.body).toMatch(/already used/);
  });

  it('refuses a foreign Host even with a valid session (DNS rebinding)', async () => {
    const { cookie } = await login();
    const r = await get(server.port, '/', { cookie, host: `attacker.example:${server.port}` });
    expect(r.status).toBe(403);
    expect(refusals.join('\n')).toMatch(/attacker\.example/);
  });

  it('does not serve files outside the build', async () => {
    const { cookie } = await login();
    expect((await get(server.port, '/../../etc/passwd', { cookie })).status).toBe(404);
    expect((await get(server.port, '/%2e%2e/%2e%2e/etc/passwd', { cookie })).status).toBe(404);
  });
});

describe('op-dbus serve: WebSocket relay', () => {
  it('refuses an upgrade without the cookie, from another origin, or at another path', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    await expect(connect({ origin })).rejects.toThrow('HTTP 403');
    const { cookie, protocols } = await login();
    await expect(connect({ origin: 'http://evil.example', cookie }, protocols)).rejects.toThrow('HTTP 403');
    await expect(connect({ origin: `http://localhost:${server.port}`, cookie }, protocols)).rejects.toThrow(
      'HTTP 403',
    );
    await expect(connect({ cookie }, protocols)).rejects.toThrow('HTTP 403');
    expect(core.calls).toEqual([]);
  });

  it('relays valid calls, refuses invalid ones, maps errors, pushes progress', async () => {
    const { cookie, protocols } = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie }, protocols);
    try {
      ws.send(JSON.stringify({ id: 1, method: 'Schema', request: {} }));
      expect(await nextMessage(ws)).toEqual({ id: 1, result: { schema: { type: 'object' } } });

      ws.send(JSON.stringify({ id: 2, method: 'Apply', request: { planId: 'p', hash: 'b'.repeat(64) } }));
      expect(await nextMessage(ws)).toEqual({
        id: 2,
        error: { code: 'StalePlan', message: 'the host changed; plan again' },
      });

      ws.send(JSON.stringify({ id: 3, method: 'Query', request: {} }));
      expect(await nextMessage(ws)).toEqual({ id: 3, error: { code: 'Internal', message: 'bus went away' } });

      ws.send(JSON.stringify({ id: 4, method: 'Shutdown', request: {} }));
      expect(await nextMessage(ws)).toMatchObject({ id: 4, error: { code: 'InvalidArgument' } });
      expect(core.calls.map((c) => c.method)).toEqual(['Schema', 'Apply', 'Query']);

      const progress: ApplyProgress = {
        planId: 'p',
        plugin: 'hostname',
        step: 'apply',
        message: 'hostname: applying',
      };
      const pushed = nextMessage(ws);
      core.emit('ApplyProgress', progress);
      expect(await pushed).toEqual({ push: 'ApplyProgress', payload: progress });
    } finally {
      ws.close();
    }
  });

  it('subscribes to every signal of the contract and pushes Metrics to each console', async () => {
    expect([...core.listeners.keys()].sort()).toEqual(['ApplyProgress', 'Metrics']);
    const { cookie, protocols } = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie }, protocols);
    try {
      const stats: Stats = {
        time: '2026-01-01T00:00:00.000Z',
        nodes: [{ id: 0, total_kb: 1024, free_kb: 512 }],
        core: { pid: 1, cpu: null, node: null, affinity: null, rss_kb: 1, unavailable: 'no addon' },
        placement: { enabled: false, node: null, cpus: [], reason: 'one node' },
        files: [],
        storage: { mode: 'plain', filesystem: 'tmpfs' },
      };
      const pushed = nextMessage(ws);
      core.emit('Metrics', stats);
      expect(await pushed).toEqual({ push: 'Metrics', payload: stats });
    } finally {
      ws.close();
    }
  });

  it('answers Witness itself, each time it is asked, without calling the core', async () => {
    const { cookie, protocols } = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie }, protocols);
    try {
      ws.send(JSON.stringify({ id: 9, method: 'Witness', request: {} }));
      expect(await nextMessage(ws)).toEqual({ id: 9, result: WITNESS });
      ws.send(JSON.stringify({ id: 10, method: 'Witness', request: {} }));
      expect(await nextMessage(ws)).toEqual({ id: 10, result: WITNESS });
      ws.send(JSON.stringify({ id: 11, method: 'Witness', request: { forget: true } }));
      expect(await nextMessage(ws)).toMatchObject({ id: 11, error: { code: 'InvalidArgument' } });
      expect(witnessRuns).toBe(2);
      expect(core.calls).toEqual([]);
    } finally {
      ws.close();
    }
  });
});

describe('op-dbus serve: a stolen session cookie', () => {
  it('opens nothing when replayed with a forged Origin, without the page secret or with a wrong one', async () => {
    const { cookie, protocols } = await login();
    const origin = `http://127.0.0.1:${server.port}`;
    // what another process on 127.0.0.1 that was sent the cookie can do: any header it likes
    await expect(connect({ origin, cookie })).rejects.toThrow('HTTP 403');
    await expect(
      connect({ origin, cookie }, ['opdbus.relay.v1', `opdbus.session.${'0'.repeat(64)}`]),
    ).rejects.toThrow('HTTP 403');
    expect(refusals.join('\n')).toMatch(/without its page secret \(a copied cookie\?\)/);
    expect(refusals.join('\n')).toMatch(/wrong page secret/);
    // the secret without the cookie is no better
    await expect(connect({ origin }, protocols)).rejects.toThrow('HTTP 403');
    expect(core.calls).toEqual([]);
    const ws = await connect({ origin, cookie }, protocols);
    expect(ws.protocol).toBe('opdbus.relay.v1');
    ws.close();
  });

  it('labels every relayed call with the console session, and logs it', async () => {
    const { cookie, protocols } = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie }, protocols);
    try {
      ws.send(JSON.stringify({ id: 1, method: 'Schema', request: {} }));
      await nextMessage(ws);
      const client = core.calls[0]?.client ?? '';
      expect(client).toMatch(/^op-dbus serve: console session [0-9a-f]{12}/);
      const label = /session ([0-9a-f]{12})/.exec(client)?.[1] ?? '';
      expect(refusals).toContain(`serve: ${client} opened`);
      expect(refusals).toContain(`serve: ${label}: Schema`);
    } finally {
      ws.close();
    }
  });

  it('ends an idle session: its sockets close with the reason, and the cookie and secret stop working', async () => {
    await server.close();
    server = await start({ idleMs: 300, maxAgeMs: 60_000 });
    const { cookie, protocols } = await login();
    const origin = `http://127.0.0.1:${server.port}`;
    const ws = await connect({ origin, cookie }, protocols);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    expect(await closed).toEqual({ code: 4001, reason: 'the console session was idle for 0.3 s' });
    await expect(connect({ origin, cookie }, protocols)).rejects.toThrow('HTTP 403');
    expect((await get(server.port, '/', { cookie })).status).toBe(403);
    expect(refusals.join('\n')).toMatch(/console session [0-9a-f]{12}.* ended: the console session was idle/);
  });

  it('ends a busy session at its maximum age', async () => {
    await server.close();
    server = await start({ idleMs: 60_000, maxAgeMs: 400 });
    const { cookie, protocols } = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie }, protocols);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const busy = setInterval(() => ws.send(JSON.stringify({ id: 1, method: 'Schema', request: {} })), 50);
    try {
      expect(await closed).toBe(4001);
    } finally {
      clearInterval(busy);
    }
  });
});

describe('op-dbus serve: what it serves and where it redirects', () => {
  it('never follows a symlink out of the build (a link to a file or a directory outside)', async () => {
    writeFileSync(join(dir, 'shadow'), 'root:secret');
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'outside', 'x.js'), 'outside');
    symlinkSync(join(dir, 'shadow'), join(dir, 'renderer', 'shadow.js'));
    symlinkSync(join(dir, 'outside'), join(dir, 'renderer', 'assets'));
    writeFileSync(join(dir, 'renderer', 'app.js'), 'inside');
    const { cookie } = await login();
    expect((await get(server.port, '/shadow.js', { cookie })).status).toBe(404);
    expect((await get(server.port, '/assets/x.js', { cookie })).status).toBe(404);
    const inside = await get(server.port, '/app.js', { cookie });
    expect([inside.status, inside.body]).toEqual([200, 'inside']);
  });

  it('redirects a redeemed token only to its own console, whatever the path (/.//evil.example/x)', async () => {
    // login() asserts the Location is exactly /#session=<secret>
    await login('/.//evil.example/x');
  });
});

/** A WebSocket of a logged-in console over a raw TCP socket, to send frames no WebSocket client would. */
async function rawConsoleSocket(l: Login): Promise<{
  send(frame: Buffer): void;
  closed: Promise<number | undefined>;
}> {
  const socket = netConnect(server.port, '127.0.0.1');
  let received = Buffer.alloc(0);
  const upgraded = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (received.includes('\r\n\r\n')) {
        if (received.toString('latin1').startsWith('HTTP/1.1 101')) resolve();
        else reject(new Error(received.toString('latin1')));
      }
    });
    socket.once('error', reject);
  });
  // the close frame's status code, once the server has ended the connection
  const closed = new Promise<number | undefined>((resolve) =>
    socket.once('close', () => {
      const body = received.subarray(received.indexOf('\r\n\r\n') + 4);
      resolve(body[0] === 0x88 && body.length >= 4 ? body.readUInt16BE(2) : undefined);
    }),
  );
  socket.write(
    [
      'GET /ws HTTP/1.1',
      `Host: 127.0.0.1:${server.port}`,
      `Origin: http://127.0.0.1:${server.port}`,
      `Cookie: ${l.cookie}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Protocol: ${l.protocols.join(', ')}`,
      '',
      '',
    ].join('\r\n'),
  );
  await upgraded;
  return { send: (frame) => socket.write(frame), closed };
}

/** One WebSocket frame: masked unless told otherwise, with the length field as the payload says. */
function frame(
  opcode: number,
  payload: Buffer,
  o: { mask?: boolean; rsv1?: boolean; claimedLength?: bigint } = {},
): Buffer {
  const mask = o.mask ?? true;
  const length = o.claimedLength ?? BigInt(payload.length);
  const head = [0x80 | (o.rsv1 === true ? 0x40 : 0) | opcode];
  let ext = Buffer.alloc(0);
  if (length < 126n) head.push((mask ? 0x80 : 0) | Number(length));
  else if (length < 65536n) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(length));
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(length);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (key[i % 4] as number)));
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

describe('op-dbus serve: WebSocket protocol errors close that socket, never the server', () => {
  it('an unmasked frame, bad UTF-8, a reserved opcode, RSV1 without an extension, an oversized frame', async () => {
    const l = await login();
    const cases: [string, Buffer, number][] = [
      ['unmasked', frame(0x1, Buffer.from('{}'), { mask: false }), 1002],
      ['bad UTF-8', frame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 1007],
      ['reserved opcode', frame(0x3, Buffer.from('x')), 1002],
      ['RSV1', frame(0x1, Buffer.from('{}'), { rsv1: true }), 1002],
      ['length 2^62', frame(0x1, Buffer.alloc(0), { claimedLength: 2n ** 62n }), 1009],
      ['over the limit', frame(0x1, Buffer.alloc(0), { claimedLength: 30n * 1024n * 1024n }), 1009],
    ];
    for (const [name, bytes, code] of cases) {
      const raw = await rawConsoleSocket(l);
      raw.send(bytes);
      expect(await raw.closed, name).toBe(code);
      // still serving: a console connects and gets its answers
      const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie: l.cookie }, l.protocols);
      ws.send(JSON.stringify({ id: 1, method: 'Schema', request: {} }));
      expect(await nextMessage(ws), name).toMatchObject({ id: 1 });
      ws.close();
    }
    expect(refusals.filter((r) => r.includes('protocol error'))).toHaveLength(cases.length);
  });

  it('relays a valid document of 2 M characters of € (6 MB of UTF-8): the limit counts what the core takes', async () => {
    const l = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie: l.cookie }, l.protocols);
    try {
      ws.send(JSON.stringify({ id: 7, method: 'Plan', request: { document: '€'.repeat(2_000_000) } }));
      expect(await nextMessage(ws)).toMatchObject({ id: 7 });
      expect(core.calls.map((c) => c.method)).toEqual(['Plan']);
      // one character more than the core takes is refused by the relay with a reason, and the socket stays
      ws.send(
        JSON.stringify({ id: 8, method: 'Plan', request: { document: '€'.repeat(4 * 1024 * 1024 + 1) } }),
      );
      expect(await nextMessage(ws)).toMatchObject({ id: 8, error: { code: 'InvalidArgument' } });
    } finally {
      ws.close();
    }
  });
});
