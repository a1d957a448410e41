import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  OpError,
  parseRelayMessage,
  PlanRequest,
  RELAY_PROTOCOL,
  SESSION_ENDED_CLOSE_CODE,
  Signals,
  type ErrorPayload,
  type MethodName,
  type RelayCall,
  type RelayLocalCall,
  type RelayPush,
  type RelayReply,
  type RequestOf,
  type ResponseOf,
  type SignalName,
  type SignalPayload,
  type InclusionReport,
  type WitnessReport,
} from '../../common/contract/index.js';
import { checkHost, checkUpgrade, offeredSecret } from './request-guard.js';
import {
  DEFAULT_SESSION_LIMITS,
  SessionGate,
  type ConsoleSession,
  type SessionLimits,
} from './session-gate.js';
import { contentTypeOf, readStaticFile, resolveStaticPath, securityHeaders } from './static-files.js';

/** What `serve` needs of the core: ManagerClient has exactly this shape; tests pass a fake. */
export interface CoreLink {
  /** `client` labels the console session behind the call in the core's audit entry. */
  call<M extends MethodName>(
    method: M,
    request: RequestOf<M>,
    opts?: { client?: string },
  ): Promise<ResponseOf<M>>;
  onSignal<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): Promise<() => void>;
}

export interface ConsoleServer {
  port: number;
  /** The one-time URL that opens the console (it carries the token). */
  url: string;
  close(): Promise<void>;
}

export interface ConsoleServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** The Vite build of renderer/. */
  rendererDir: string;
  core: CoreLink;
  /**
   * The witness of the core's audit log, run by this process (the user's, on the workstation) each
   * time the console asks (relay-local method `Witness`, never forwarded to the core).
   */
  witness: () => Promise<WitnessReport>;
  /** Checks an entry's inclusion proof against the last witnessed checkpoint (witness/inclusion.ts). */
  verifyInclusion: (seq: number) => Promise<InclusionReport>;
  /** One line per refused request, so an admin sees probes, and per session opened, used and ended. */
  log?: (line: string) => void;
  /** How long a console session lives (default DEFAULT_SESSION_LIMITS). */
  sessionLimits?: SessionLimits;
}

const WS_PATH = '/ws';
/**
 * The largest WebSocket message: a Plan of the largest document the core takes (PlanRequest counts
 * UTF-16 code units) as JSON text in UTF-8 bytes. One code unit takes at most 6 bytes there (`\u001f`; a
 * BMP character such as `€` takes 3, a surrogate pair 4 for two units), plus room for the envelope.
 */
const MAX_MESSAGE_BYTES = 6 * (PlanRequest.shape.document.maxLength ?? 4 * 1024 * 1024) + 64 * 1024;
/** How often ended sessions are looked for: their sockets close within this of the limit. */
const SWEEP_MS = 30_000;

/** Starts the console's HTTP + WebSocket front on 127.0.0.1 only. */
export async function startConsoleServer(opts: ConsoleServerOptions): Promise<ConsoleServer> {
  const log = opts.log ?? (() => undefined);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const gate = new SessionGate(port, opts.sessionLimits ?? DEFAULT_SESSION_LIMITS);
  const sockets = new Map<WebSocket, ConsoleSession>();
  const headers = securityHeaders(port);
  const url = `http://127.0.0.1:${port}/?token=${gate.token ?? ''}`;

  const refuse = (res: ServerResponse, status: number, reason: string): void => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`${reason}\n`);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handleRequest(req, res).catch((e: unknown) => {
      log(`serve: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) refuse(res, 500, 'internal error');
      else res.destroy();
    });
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hostRefusal = checkHost(req.headers.host, port);
    if (hostRefusal !== undefined) {
      log(`serve: refused ${req.method ?? '?'} ${req.url ?? ''}: ${hostRefusal}`);
      return refuse(res, 403, `Forbidden: ${hostRefusal}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'Method not allowed');
    const target = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const token = target.searchParams.get('token');
    if (token !== null) {
      const r = gate.redeem(token, req.headers['user-agent']);
      if (!r.ok) {
        log(`serve: refused a console token: ${r.reason}`);
        return refuse(res, 403, `Forbidden: ${r.reason}`);
      }
      log(`serve: ${r.session.client} opened`);
      // 303 to the console with its secret in the fragment: the token leaves the address bar and the
      // history, and the secret reaches only the page (a fragment is never sent to a server)
      res.writeHead(303, { ...headers, 'Set-Cookie': r.setCookie, Location: r.location });
      res.end();
      return;
    }
    const session = gate.sessionOf(req.headers.cookie);
    if (session === undefined) {
      return refuse(res, 403, 'Forbidden: no console session. Open the URL that `op-dbus serve` printed.');
    }
    gate.touch(session);
    const file = resolveStaticPath(opts.rendererDir, target.pathname);
    const type = file !== undefined ? contentTypeOf(file) : undefined;
    if (file === undefined || type === undefined) return refuse(res, 404, 'Not found');
    const body = await readStaticFile(opts.rendererDir, file);
    if (body === undefined) return refuse(res, 404, 'Not found');
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    // never echo the session's secret: the console's relay protocol is the one chosen
    handleProtocols: (offered) => (offered.has(RELAY_PROTOCOL) ? RELAY_PROTOCOL : false),
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // a peer that resets the connection while it is refused must not take serve down
    socket.on('error', (e) => log(`serve: WebSocket upgrade: ${e.message}`));
    const path = new URL(req.url ?? '/', `http://127.0.0.1:${port}`).pathname;
    const binding = gate.bind(req.headers.cookie, offeredSecret(protocolsOf(req)));
    const refusal =
      path !== WS_PATH
        ? `no WebSocket at ${path}`
        : checkUpgrade(
            { host: req.headers.host, origin: req.headers.origin },
            port,
            binding.ok ? undefined : binding.reason,
          );
    if (refusal !== undefined || !binding.ok) {
      log(`serve: refused a WebSocket: ${refusal}`);
      const body = `Forbidden: ${refusal}\n`;
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    const session = binding.session;
    gate.touch(session);
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(ws, session);
      ws.on('close', () => sockets.delete(ws));
      wss.emit('connection', ws, req);
    });
  });

  const endSession = (session: ConsoleSession, why: string): void => {
    log(`serve: ${session.client} ended: ${why}`);
    for (const [ws, s] of sockets) {
      if (s === session) ws.close(SESSION_ENDED_CLOSE_CODE, why);
    }
  };
  // relayed calls waiting for the core, named at close
  const inFlight = new Set<{ what: string; since: number }>();
  const sweep = setInterval(
    () => {
      for (const { session, why } of gate.endExpired()) endSession(session, why);
    },
    Math.min(SWEEP_MS, Math.max(50, gate.limits.idleMs / 4)),
  );
  sweep.unref();

  wss.on('connection', (ws: WebSocket) => {
    // A frame ws refuses (too large, not masked, bad UTF-8, a reserved opcode) closes this socket with the
    // matching close code; without a listener the 'error' event would end the whole process.
    ws.on('error', (e) => log(`serve: a console WebSocket closed on a protocol error: ${e.message}`));
    ws.on('message', (data, isBinary) => {
      const session = sockets.get(ws);
      const ended = session === undefined ? 'no session' : gate.endedWhy(session);
      if (session === undefined || ended !== undefined) {
        ws.close(SESSION_ENDED_CLOSE_CODE, ended);
        return;
      }
      gate.touch(session);
      if (isBinary) {
        send(ws, {
          id: null,
          error: { code: 'InvalidArgument', message: 'binary messages are not accepted' },
        });
        return;
      }
      const parsed = parseRelayMessage(
        Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'),
      );
      if ('reply' in parsed) {
        send(ws, parsed.reply);
        return;
      }
      if ('local' in parsed) {
        void answerLocally(opts, parsed.local).then((reply) => send(ws, reply));
        return;
      }
      log(`serve: ${session.label}: ${parsed.call.method}`);
      const call = { what: `${session.label}: ${parsed.call.method}`, since: Date.now() };
      inFlight.add(call);
      void relay(opts.core, parsed.call, session.client).then((reply) => {
        inFlight.delete(call);
        send(ws, reply);
      });
    });
  });

  // Every signal of the contract goes to every console; the payloads were checked by the client.
  const broadcast = (push: RelayPush): void => {
    for (const client of wss.clients) send(client, push);
  };
  const stops = await Promise.all(
    (Object.keys(Signals) as SignalName[]).map((name) =>
      opts.core.onSignal(name, (payload) => broadcast({ push: name, payload } as RelayPush)),
    ),
  );

  return {
    port,
    url,
    close: async () => {
      clearInterval(sweep);
      // closing the core's connection fails these; name them, so a call the core never answered is seen
      for (const call of inFlight)
        log(`serve: closing with ${call.what} unanswered after ${Date.now() - call.since} ms`);
      for (const stop of stops) stop();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Forwards one validated call to the core; every failure becomes an ErrorPayload, never a stack. */
export async function relay(core: CoreLink, call: RelayCall, client?: string): Promise<RelayReply> {
  try {
    // the request was validated against Manager1[call.method].request by parseRelayMessage
    const result = await core.call(
      call.method,
      call.request as RequestOf<typeof call.method>,
      client === undefined ? {} : { client },
    );
    return { id: call.id, result };
  } catch (e) {
    return { id: call.id, error: errorPayloadOf(e) };
  }
}

/** Answers a relay-local method; it never reaches the core. */
async function answerLocally(opts: ConsoleServerOptions, call: RelayLocalCall): Promise<RelayReply> {
  try {
    switch (call.method) {
      case 'Witness':
        return { id: call.id, result: await opts.witness() };
      case 'VerifyInclusion':
        return { id: call.id, result: await opts.verifyInclusion((call.request as { seq: number }).seq) };
    }
  } catch (e) {
    return { id: call.id, error: errorPayloadOf(e) };
  }
}

function errorPayloadOf(e: unknown): ErrorPayload {
  if (e instanceof OpError) return e.toPayload();
  return { code: 'Internal', message: e instanceof Error ? e.message : String(e) };
}

function send(ws: WebSocket, reply: RelayReply): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
}

/** The subprotocols a WebSocket upgrade offers (Sec-WebSocket-Protocol, comma-separated). */
function protocolsOf(req: IncomingMessage): Set<string> {
  const header = req.headers['sec-websocket-protocol'];
  return new Set(
    (header ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  );
}
