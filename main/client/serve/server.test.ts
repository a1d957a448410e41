import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
// test/serve and e2e/ run it against the real core.

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
  calls: { method: MethodName; request: unknown }[] = [];
  readonly listeners = new Map<SignalName, (payload: unknown) => void>();

  call(method: MethodName, request: unknown): Promise<never> {
    this.calls.push({ method, request });
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

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-serve-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  core = new FakeCore();
  refusals.length = 0;
  witnessRuns = 0;
  server = await startConsoleServer({
    port: 0,
    rendererDir: dir,
    core,
    witness: () => {
      witnessRuns++;
      return Promise.resolve(WITNESS);
    },
    log: (l) => refusals.push(l),
  });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function login(): Promise<string> {
  const token = new URL(server.url).searchParams.get('token') ?? '';
  const r = await get(server.port, `/?token=${token}`);
  expect(r.status).toBe(303);
  expect(r.headers['location']).toBe('/');
  const setCookie = r.headers['set-cookie']?.[0] ?? '';
  expect(setCookie).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
  return setCookie.split(';')[0] ?? '';
}

function connect(headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers });
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
    const cookie = await login();
    const page = await get(server.port, '/', { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>console</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const again = await get(server.port, server.url.slice(server.url.indexOf('/?')));
    expect(again.status).toBe(403);
    expect(again.body).toMatch(/already used/);
  });

  it('refuses a foreign Host even with a valid session (DNS rebinding)', async () => {
    const cookie = await login();
    const r = await get(server.port, '/', { cookie, host: `attacker.example:${server.port}` });
    expect(r.status).toBe(403);
    expect(refusals.join('\n')).toMatch(/attacker\.example/);
  });

  it('does not serve files outside the build', async () => {
    const cookie = await login();
    expect((await get(server.port, '/../../etc/passwd', { cookie })).status).toBe(404);
    expect((await get(server.port, '/%2e%2e/%2e%2e/etc/passwd', { cookie })).status).toBe(404);
  });
});

describe('op-dbus serve: WebSocket relay', () => {
  it('refuses an upgrade without the cookie, from another origin, or at another path', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    await expect(connect({ origin })).rejects.toThrow('HTTP 403');
    const cookie = await login();
    await expect(connect({ origin: 'http://evil.example', cookie })).rejects.toThrow('HTTP 403');
    await expect(connect({ origin: `http://localhost:${server.port}`, cookie })).rejects.toThrow('HTTP 403');
    await expect(connect({ cookie })).rejects.toThrow('HTTP 403');
    expect(core.calls).toEqual([]);
  });

  it('relays valid calls, refuses invalid ones, maps errors, pushes progress', async () => {
    const cookie = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie });
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
    const cookie = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie });
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
    const cookie = await login();
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}`, cookie });
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
