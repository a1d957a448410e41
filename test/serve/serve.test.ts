import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AuditListResponse } from '../../main/common/contract/index.js';
import { CLI, TestSandbox } from '../support/sandbox.js';

// A real `op-dbus serve` (the CLI's subcommand, a process of its own) in front of a real core on the
// sandbox's bus, attacked as another process on 127.0.0.1 would: it holds the console's session cookie
// (every server on 127.0.0.1 is sent it) and writes any header it likes, and it sends frames no browser
// would. It must open nothing, and serve must stay up; the console's own page gets through, and the
// audit entry of its plan names the console session.
let sb: TestSandbox;
let serve: ChildProcess;
let port: number;
let url: string;
let stderr = '';

beforeAll(async () => {
  sb = await TestSandbox.start();
  const renderer = join(sb.dir, '..', 'renderer');
  mkdirSync(renderer, { recursive: true });
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>console</title>');
  serve = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--renderer-dir', renderer], {
    env: { ...sb.childEnv, OP_DBUS_WITNESS: 'off' },
    stdio: 'pipe',
  });
  serve.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve printed no URL: ${stderr}`)), 15_000);
    serve.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
  });
  port = Number(new URL(url).port);
});
afterAll(async () => {
  if (serve !== undefined && serve.exitCode === null) {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
  }
  await sb?.stop();
  // the sandbox removes its own directory; the test's files (renderer, state) sit beside it
  if (sb !== undefined) rmSync(dirname(sb.dir), { recursive: true, force: true });
});

function get(path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function open(headers: Record<string, string>, protocols: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, protocols, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
}

function answer(
  ws: WebSocket,
  message: unknown,
): Promise<{ id: number; result?: unknown; error?: { code: string } }> {
  return new Promise((resolve) => {
    ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString('utf8')) as { id: number }));
    ws.send(JSON.stringify(message));
  });
}

const audit = (): AuditListResponse =>
  JSON.parse(sb.cli(['audit', 'list', '--json']).stdout) as AuditListResponse;

describe('op-dbus serve against the real core', () => {
  let cookie: string;
  let secret: string;

  it('the one-time URL gives the page a cookie and, in the fragment, its secret', async () => {
    const r = await get(new URL(url).pathname + new URL(url).search);
    expect(r.status).toBe(303);
    secret = /^\/#session=([0-9a-f]{64})$/.exec(String(r.headers['location']))?.[1] ?? '';
    expect(secret).not.toBe('');
    cookie = String((r.headers['set-cookie'] as string[])[0]).split(';')[0] ?? '';
  });

  it('a process replaying the stolen cookie with a forged Origin opens nothing, and nothing is audited', async () => {
    const before = audit().size;
    const origin = `http://127.0.0.1:${port}`;
    await expect(open({ origin, cookie }, ['opdbus.relay.v1'])).rejects.toThrow('HTTP 403');
    await expect(
      open({ origin, cookie }, ['opdbus.relay.v1', `opdbus.session.${randomBytes(32).toString('hex')}`]),
    ).rejects.toThrow('HTTP 403');
    expect(stderr).toMatch(/refused a WebSocket: .*a copied cookie\?/);
    expect(audit().size).toBe(before);
  });

  it("the console's page plans, and the audit entry names its session beside the uid", async () => {
    const ws = await open({ origin: `http://127.0.0.1:${port}`, cookie }, [
      'opdbus.relay.v1',
      `opdbus.session.${secret}`,
    ]);
    try {
      const document = JSON.stringify({ version: 1, plugins: { hostname: { location: 'Served' } } });
      const plan = await answer(ws, { id: 1, method: 'Plan', request: { document } });
      expect(plan.error).toBeUndefined();
      const entry = audit().entries.find((e) => e.kind === 'plan');
      const label = /op-dbus serve: console session ([0-9a-f]{12})/.exec(stderr)?.[1];
      expect(label).toBeDefined();
      expect(entry?.actor).toMatchObject({
        uid: 0,
        action: 'org.opdbus.plan',
        client: expect.stringMatching(`^op-dbus serve: console session ${label ?? ''}`) as unknown,
      });
      expect(sb.cli(['audit', 'verify']).code).toBe(0);
      // 2 M characters of € (6 MB of UTF-8) reach the core, which names what is wrong with them
      const euros = await answer(ws, { id: 2, method: 'Plan', request: { document: '€'.repeat(2_000_000) } });
      expect(euros).toMatchObject({ id: 2, error: { code: 'ParseError' } });
    } finally {
      ws.close();
    }
  });

  it('an unmasked frame closes that socket; serve stays up', async () => {
    const socket = netConnect(port, '127.0.0.1');
    const closed = new Promise<string>((resolve) => {
      let received = '';
      socket.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        // the upgrade answered: now a frame no browser sends (a client's frames are masked)
        if (received.includes('\r\n\r\n') && received.startsWith('HTTP/1.1 101')) {
          socket.write(Buffer.from([0x81, 0x02, 0x7b, 0x7d]));
        }
      });
      socket.once('close', () => resolve(received));
    });
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nCookie: ${cookie}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: opdbus.relay.v1, opdbus.session.${secret}\r\n\r\n`,
    );
    expect(await closed).toMatch(/^HTTP\/1\.1 101/);
    await new Promise((r) => setTimeout(r, 200));
    expect(serve.exitCode).toBeNull();
    expect((await get('/')).status).toBe(403);
  });
});
