import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED_VALUE } from '../main/common/contract/index.js';
import { rewriteAuditHistory } from '../test/support/audit-rewrite.js';
import { TestSandbox, waitFor } from '../test/support/sandbox.js';
import {
  launchChromium,
  openDocumentFile,
  screenshot,
  startServe,
  typeOverWord,
  type ServeProcess,
} from './support/console.js';
import { ProbeHost } from './support/probe.js';

// The console end to end on a real sandbox: private dbus-daemon, polkitd, systemd-hostnamed in an
// overlay, the core; `op-dbus serve` as a separate process; Debian's Chromium driving the UI.
// Independent readers check every claim: the CLI's audit list, busctl, hostnamed's machine-info,
// and the state files and call log of probe plugins installed from OP_DBUS_PLUGIN_PATH.

let sb: TestSandbox;
let serve: ServeProcess;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let context: BrowserContext;
let page: Page;
let probe: ProbeHost;

// What the admin opens; the test then types the location over the placeholder in Monaco.
const TEMPLATE = `// hostname of the e2e host
{
  "version": 1,
  "plugins": {
    "hostname": {
      "pretty_hostname": "Console Host",
      "location": "PLACEHOLDER",
      "chassis": "server", // trailing commas and comments are fine
    },
  },
}
`;

// Two probe plugins: alpha's "gone" is irreversible (it runs last, and only confirmed); beta runs after alpha.
const PROBES_DOC = JSON.stringify(
  {
    version: 1,
    plugins: {
      alpha: { values: { a: '1', gone: 'x' }, irreversible: ['gone'] },
      beta: { values: { b: '1' } },
    },
  },
  null,
  2,
);
const CANCEL_DOC = JSON.stringify(
  {
    version: 1,
    plugins: {
      alpha: { values: { a: '2' } },
      beta: { values: { b: '2' }, delay_ms: 4000, honour_signal: false },
    },
  },
  null,
  2,
);

interface AuditList {
  entries: { seq: number; kind: string; summary: string; payload_hash: string | null }[];
}

function auditList(): AuditList {
  const r = sb.cli(['audit', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as AuditList;
}

const text = async (testId: string): Promise<string> =>
  ((await page.getByTestId(testId).textContent()) ?? '').trim();

// Metrics every 300 ms, so the Host view sees signals within the test's patience; the probe
// plugins' directory (and one the core must refuse) on OP_DBUS_PLUGIN_PATH. Every restart keeps both.
let coreEnv: Record<string, string>;

/** Probe plugins as an admin installs them: alpha, beta after it, and two the Plugins tab explains. */
function installPlugins(base: string): string {
  const dir = join(base, 'plugins');
  probe = new ProbeHost(join(base, 'probe-host'));
  mkdirSync(dir, { mode: 0o755 });
  mkdirSync(probe.root, { mode: 0o755 });
  // the probes run isolated, as nobody (uid 65534): their host directory is theirs to write
  chownSync(probe.root, 65534, 65534);
  probe.install(dir, 'alpha');
  probe.install(dir, 'beta', { after: ['alpha'] });
  probe.install(dir, 'gamma', { after: ['nonesuch'] });
  probe.install(dir, 'offline', { root: join(base, 'nowhere') });
  // a directory anyone may write: the core must refuse to load plugins from it
  const open = join(base, 'world-writable');
  mkdirSync(open);
  chmodSync(open, 0o777);
  return `${dir}:${open}`;
}

beforeAll(async () => {
  // the witness's store (serve's and the CLI's) is the sandbox's own: both run with sb.childEnv
  delete process.env['OP_DBUS_WITNESS'];
  sb = await TestSandbox.start();
  coreEnv = { OP_DBUS_METRICS_INTERVAL_MS: '300', OP_DBUS_PLUGIN_PATH: installPlugins(join(sb.dir, '..')) };
  await sb.restartCore(coreEnv);
  serve = await startServe(sb);
  browser = await launchChromium();
  context = browser.context;
  page = await context.newPage();
});

afterAll(async () => {
  try {
    await browser?.close();
    await serve?.stop();
  } finally {
    // with its temp dir: the plugins, their host and the witness's store are under it
    await sb?.stop();
  }
});

describe('the console in Chromium through op-dbus serve', () => {
  it('refuses a wrong token with 403 and serves nothing without a session', async () => {
    const probe = await context.newPage();
    const wrong = await probe.goto(`${serve.origin}/?token=${'0'.repeat(64)}`);
    expect(wrong?.status()).toBe(403);
    expect(await probe.textContent('body')).toMatch(/wrong console token/);
    await screenshot(probe, '01-bad-token-refused');
    const bare = await probe.goto(`${serve.origin}/`);
    expect(bare?.status()).toBe(403);
    await probe.close();
  });

  it('swaps the one-time token for a session and drops it from the address bar', async () => {
    const r = await page.goto(serve.url);
    expect(r?.status()).toBe(200);
    expect(page.url()).toBe(`${serve.origin}/`);
    const cookies = await context.cookies(serve.origin);
    expect(cookies).toEqual([
      expect.objectContaining({
        name: `opdbus_session_${serve.port}`,
        httpOnly: true,
        sameSite: 'Strict',
      }) as unknown,
    ]);
    await page.getByText('Connected to the core via op-dbus serve').waitFor();
    await page.locator('[data-testid="desired-editor"] .monaco-editor').waitFor();
  });

  it("witnesses the host's log on connect: first contact, trusted on first use", async () => {
    await page.getByTestId('tab-audit').click();
    const witness = page.locator('[data-testid="witness"][data-status="first-contact"]');
    await witness.waitFor();
    expect(await witness.textContent()).toMatch(/first contact \(trusted on first use\)/);
    await screenshot(page, '02a-witness-first-contact');
    await page.getByTestId('tab-editor').click();
  });

  it('refuses the same token a second time, in another browser profile', async () => {
    const other = await launchChromium();
    try {
      const p = await other.context.newPage();
      const again = await p.goto(serve.url);
      expect(again?.status()).toBe(403);
      expect(await p.textContent('body')).toMatch(/already used/);
    } finally {
      await other.close();
    }
  });

  it('refuses a WebSocket from another origin on the same site, though the browser sends the cookie', async () => {
    // 127.0.0.1 on another port is the same site: SameSite=Strict does not stop the cookie, the Origin check does.
    const attacker: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<script>
        const ws = new WebSocket('ws://127.0.0.1:${serve.port}/ws');
        ws.onopen = () => { document.title = 'opened'; };
        ws.onerror = () => { document.title = 'refused'; };
      </script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const p = await context.newPage();
      await p.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      await p.waitForFunction("document.title !== ''");
      expect(await p.title()).toBe('refused');
      expect(serve.stderr()).toMatch(/refused a WebSocket: Origin "http:\/\/127\.0\.0\.1:\d+" is not/);
      await p.close();
    } finally {
      attacker.close();
    }
  });

  it('"Start from host state" leaves out what the core redacted, and says so in the editor', async () => {
    // No plugin on the sandbox has a secret yet: this page's WebSocket adds one to the core's Query
    // answer, in the form the core redacts secrets (the contract's REDACTED_VALUE).
    const p = await context.newPage();
    await p.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      const queries = new Set<number>();
      ws.onMessage((m) => {
        const call = JSON.parse(String(m)) as { id: number; method: string };
        if (call.method === 'Query') queries.add(call.id);
        server.send(m);
      });
      server.onMessage((m) => {
        const reply = JSON.parse(String(m)) as {
          id?: number;
          result?: { plugins?: { state?: Record<string, unknown> }[] };
        };
        // every other answer (Schema, Stats, Drift...) has no plugins: it passes through untouched
        const state = reply.result?.plugins?.[0]?.state;
        if (reply.id === undefined || !queries.has(reply.id) || state === undefined) return ws.send(m);
        state['api_token'] = REDACTED_VALUE;
        ws.send(JSON.stringify(reply));
      });
    });
    await p.goto(`${serve.origin}/`);
    await p.locator('[data-testid="desired-editor"] .monaco-editor').waitFor();
    await p.getByRole('button', { name: 'Start from host state' }).click();
    const note = p.getByTestId('host-state-left-out');
    await note.waitFor();
    expect(await note.textContent()).toMatch(
      /Left out a secret value the core does not reveal \(\/plugins\/hostname\/api_token\)/,
    );
    const lines = p.locator('[data-testid="desired-editor"] .view-lines');
    await lines.getByText('"hostname"').waitFor();
    expect(await lines.textContent()).not.toContain(REDACTED_VALUE);
    await screenshot(p, '02b-host-state-secret-left-out');
    await p.close();
  });

  let approvedHash = '';

  it('marks a schema violation in the editor', async () => {
    await openDocumentFile(page, 'e2e-host.jsonc', TEMPLATE);
    await typeOverWord(page, 'server', 'spaceship');
    const problems = page.getByTestId('problems');
    await problems
      .getByText(/Value is not accepted|spaceship/)
      .first()
      .waitFor();
    await page.locator('[data-testid="desired-editor"] .squiggly-error').first().waitFor();
    await screenshot(page, '02-editor-schema-error');
  });

  it('plans a change typed in Monaco and shows it per plugin and resource, before → after', async () => {
    await typeOverWord(page, 'spaceship', 'server');
    await typeOverWord(page, 'PLACEHOLDER', 'Rack 7, e2e');
    await page.getByTestId('problems').getByText('No problems').waitFor();
    await screenshot(page, '03-editor-valid');
    await page.getByTestId('plan-button').click();
    const row = page.locator('[data-testid="change-row"][data-path="/plugins/hostname/location"]');
    await row.waitFor();
    expect(await row.locator('.after').textContent()).toBe('"Rack 7, e2e"');
    expect(await row.locator('.before').textContent()).toBe('""');
    await page.locator('[data-testid="plan-diff"] .monaco-diff-editor').waitFor();
    await page
      .locator('[data-testid="plan-diff"] .line-insert, [data-testid="plan-diff"] .char-insert')
      .first()
      .waitFor();
    expect(await text('plan-hash')).toMatch(/^[0-9a-f]{64}$/);
    await screenshot(page, '04-plan');
  });

  it('approves exactly the hash on screen, and the audit entry holds that hash', async () => {
    const planHash = await text('plan-hash');
    await page.getByTestId('approve-button').click();
    await page.getByTestId('approved-hash').waitFor();
    approvedHash = await text('approved-hash');
    expect(approvedHash).toBe(planHash);
    const approve = auditList().entries.find((e) => e.kind === 'approve');
    expect(approve?.summary).toBe(`approve plan ${approvedHash}`);
  });

  it('applies with streamed progress; hostnamed and the audit list show it', async () => {
    await page.getByTestId('apply-button').click();
    await page.getByTestId('apply-result').waitFor();
    expect(await page.getByTestId('apply-progress').locator('li').count()).toBeGreaterThan(0);
    expect(await text('apply-result')).toMatch(/Applied and verified/);
    await screenshot(page, '05-applied');
    expect(sb.machineInfo()['LOCATION']).toBe('Rack 7, e2e');
    expect(sb.hostnameProperty('Location')).toBe('Rack 7, e2e');
    // the console asks for drift after an apply: that read may be the newest entry
    const latest = auditList().entries.find((e) => e.kind === 'apply');
    expect(latest?.summary).toContain(approvedHash);

    await page.getByTestId('tab-audit').click();
    const applyRow = page.locator(`[data-testid="audit-row"][data-seq="${latest?.seq ?? -1}"]`);
    await applyRow.waitFor();
    expect(await applyRow.getAttribute('data-kind')).toBe('apply');
    expect(await applyRow.textContent()).toContain(approvedHash);
    await page.getByTestId('chain-state').getByText('Chain verified').waitFor();
    // the changes re-ran the witness: the log grew, and the consistency proof checks
    await page.locator('[data-testid="witness"][data-status="in-sync"]').waitFor();
    await screenshot(page, '06-audit');
  });

  it("opens the approved plan's entry: its payload's changes before → after, the hash the chain holds", async () => {
    const entry = auditList().entries.find(
      (e) => e.kind === 'plan' && e.summary.startsWith(`plan ${approvedHash.slice(0, 12)}`),
    );
    expect(entry).toBeDefined();
    const row = page.locator(`[data-testid="audit-row"][data-seq="${entry?.seq ?? -1}"]`);
    await row.getByTestId('entry-toggle').click();
    const detail = page.locator(`[data-testid="entry-detail"][data-seq="${entry?.seq ?? -1}"]`);
    const change = detail
      .getByTestId('entry-change')
      .filter({ has: page.getByText('/plugins/hostname/location', { exact: true }) });
    await change.waitFor();
    // before: what hostnamed had when planned (nothing); after: what it reports now (busctl, above)
    expect(await change.locator('.before').textContent()).toBe('""');
    expect(await change.locator('.after').textContent()).toBe(
      JSON.stringify(sb.hostnameProperty('Location')),
    );
    expect(await detail.textContent()).toContain(entry?.payload_hash ?? 'no payload hash');
    expect(await row.getByTestId('entry-toggle').getAttribute('aria-expanded')).toBe('true');
    await screenshot(page, '06b-audit-entry-detail');
    await row.getByTestId('entry-toggle').click();
    await detail.waitFor({ state: 'detached' });
  });

  it('says stale and offers a re-plan when the host changes between plan and apply', async () => {
    await page.getByTestId('tab-editor').click();
    await openDocumentFile(page, 'e2e-host.jsonc', TEMPLATE);
    await typeOverWord(page, 'PLACEHOLDER', 'Rack 9, e2e');
    await page.getByTestId('plan-button').click();
    await page
      .locator('[data-testid="change-row"][data-path="/plugins/hostname/location"] .after')
      .getByText('"Rack 9, e2e"')
      .waitFor();
    const firstHash = await text('plan-hash');
    await page.getByTestId('approve-button').click();
    await page.getByTestId('approved-hash').waitFor();

    sb.setHostnameOutOfBand('SetLocation', 'Moved by hand');
    await page.getByTestId('apply-button').click();
    const stale = page.getByTestId('stale-plan');
    await stale.waitFor();
    expect(await stale.textContent()).toMatch(/stale/i);
    expect(sb.hostnameProperty('Location')).toBe('Moved by hand');
    await screenshot(page, '07-stale-plan');

    await page.getByTestId('replan-button').click();
    const row = page.locator('[data-testid="change-row"][data-path="/plugins/hostname/location"]');
    await row.locator('.before').getByText('"Moved by hand"').waitFor();
    expect(await text('plan-hash')).not.toBe(firstHash);
    expect(await page.getByTestId('stale-plan').count()).toBe(0);
    expect(await page.getByTestId('error-notice').count()).toBe(0);
    await screenshot(page, '08-replanned');
  });

  it('lists the plugins the core found: source, order, availability and why not, notes, refused directories', async () => {
    await page.getByTestId('tab-plugins').click();
    const row = (name: string) => page.locator(`[data-testid="plugin-row"][data-name="${name}"]`);
    await row('alpha').waitFor();
    expect(await row('hostname').textContent()).toMatch(/built-in.*SetLocation.*available/);
    expect(await row('beta').getByTestId('plugin-after').textContent()).toBe('alpha');
    expect(await row('beta').textContent()).toMatch(/community/);
    expect(await row('gamma').getByTestId('plugin-notes').textContent()).toMatch(
      /after names nonesuch, which is not installed/,
    );
    expect(await row('offline').getAttribute('data-available')).toBe('false');
    expect(await row('offline').getByTestId('plugin-availability').textContent()).toMatch(
      /unavailable: .*\/nowhere is missing/,
    );
    // in the order an apply runs them: beta after alpha
    const names = await page
      .getByTestId('plugin-row')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')));
    expect(names.indexOf('alpha')).toBeLessThan(names.indexOf('beta'));
    expect(await page.getByTestId('plugin-refused').textContent()).toMatch(
      /world-writable.*writable by every user/,
    );
    await screenshot(page, '11-plugins');
  });

  let probesPlanHash = '';

  it('lists irreversible changes last and applies only when each is confirmed by name', async () => {
    await page.getByTestId('tab-editor').click();
    await openDocumentFile(page, 'e2e-probes.json', PROBES_DOC);
    await page.getByTestId('problems').getByText('No problems').waitFor();
    await page.getByTestId('plan-button').click();
    const last = page.getByTestId('irreversible-changes');
    await last.locator('[data-testid="change-row"][data-path="/plugins/alpha/values/gone"]').waitFor();
    expect(await last.locator('[data-testid="change-row"]').count()).toBe(1);
    expect(await last.textContent()).toMatch(/run last.*alpha\/gone/);
    probesPlanHash = await text('plan-hash');

    await page.getByTestId('approve-button').click();
    await page.getByTestId('approved-hash').waitFor();
    const apply = page.getByTestId('apply-button');
    expect(await apply.isDisabled()).toBe(true);
    expect(await text('apply-waits-for-confirmation')).toBe('Apply waits until you confirm alpha/gone.');
    await screenshot(page, '12-irreversible-to-confirm');
    await page.locator('[data-testid="confirm-irreversible"][data-resource="alpha/gone"]').check();
    expect(await apply.isEnabled()).toBe(true);
    probe.resetCalls();
    await apply.click();
    await page.getByTestId('apply-result').waitFor();
    expect(await text('apply-confirmed-irreversible')).toMatch(/alpha\/gone/);
    await screenshot(page, '13-irreversible-applied');
    // the irreversible change ran last, after beta, and the core recorded the confirmation
    expect(probe.applies()).toEqual(['alpha.apply(a)', 'beta.apply(b)', 'alpha.apply(gone)']);
    expect(probe.state('alpha')).toEqual({ a: '1', gone: 'x' });
    expect(auditList().entries.find((e) => e.kind === 'apply')?.summary).toMatch(
      new RegExp(
        `apply plan ${probesPlanHash}: applied and verified .*; irreversible, confirmed: alpha/gone`,
      ),
    );
  });

  it('cancels a running apply: the panel says cancelling, then cancelled and rolled back', async () => {
    await page.getByTestId('tab-editor').click();
    // beta finishes its step before it looks at the cancel (honour_signal: false): the panel shows "cancelling" meanwhile
    await openDocumentFile(page, 'e2e-cancel.json', CANCEL_DOC);
    await page.getByTestId('plan-button').click();
    await page.locator('[data-testid="change-row"][data-path="/plugins/beta/values/b"]').waitFor();
    await page.getByTestId('approve-button').click();
    await page.getByTestId('approved-hash').waitFor();
    probe.resetCalls();
    await page.getByTestId('apply-button').click();
    await waitFor('beta to start applying', () => probe.calls().includes('beta.apply(b)'));
    expect(probe.state('alpha').a).toBe('2');
    await page.getByTestId('cancel-button').click();
    await page.getByTestId('apply-cancelling').waitFor();
    await page.locator('[data-testid="apply-progress"] li.step-cancelling').waitFor();
    await screenshot(page, '14-cancelling');

    const cancelled = page.getByTestId('apply-cancelled');
    await cancelled.waitFor({ timeout: 15_000 });
    expect(await cancelled.textContent()).toMatch(
      /Cancelled and rolled back\..*was cancelled and was rolled back: cancelled by uid 0/,
    );
    expect(await page.getByTestId('apply-button').isDisabled()).toBe(true);
    await screenshot(page, '15-cancelled');
    expect(probe.state('alpha')).toEqual({ a: '1', gone: 'x' });
    expect(probe.state('beta')).toEqual({ b: '1' });
    expect(probe.calls()).toContain('alpha.rollback');
    expect(auditList().entries.find((e) => e.kind === 'apply')?.summary).toMatch(
      /failed \(cancelled by uid 0 .*\); rolled back/,
    );
  });

  it('shows drift from the last applied plan apart from the plan, and converges it back', async () => {
    const verdict = (v: string) => page.locator(`[data-testid="drift-verdict"][data-verdict="${v}"]`);
    // the cancelled apply left the host as the irreversible test applied it
    await verdict('in-sync').waitFor();
    expect(await text('drift-plan-hash')).toBe(probesPlanHash);

    probe.setOutOfBand('beta', { b: 'by hand' });
    await page.getByTestId('drift-refresh').click();
    await verdict('drifted').waitFor();
    const row = page.locator('[data-testid="drift-row"][data-path="/plugins/beta/values/b"]');
    expect(await row.locator('.applied').textContent()).toBe('"1"');
    expect(await row.locator('.host').textContent()).toBe('"by hand"');
    expect(await page.getByTestId('drift-row').count()).toBe(1);
    await screenshot(page, '16-drift');

    await page.getByTestId('converge-button').click();
    const review = page.getByTestId('converge-review');
    await review.waitFor();
    expect(await review.textContent()).toMatch(/1 change/);
    expect(await review.getByTestId('confirm-irreversible').count()).toBe(0);
    await page.getByTestId('converge-now').click();
    await page.getByTestId('converge-result').getByText('Converged and verified.').waitFor();
    await verdict('in-sync').waitFor();
    expect(await text('drift-plan-hash')).toBe(probesPlanHash);
    await screenshot(page, '17-converged');
    expect(probe.state('beta')).toEqual({ b: '1' });
    expect(auditList().entries.find((e) => e.kind === 'converge')?.summary).toMatch(
      new RegExp(`converge to applied plan ${probesPlanHash}: new plan [0-9a-f]+ with 1 change`),
    );
  });

  it("shows the core's NotConfirmed refusal when an irreversible change appears after review, then converges with it confirmed", async () => {
    const verdict = (v: string) => page.locator(`[data-testid="drift-verdict"][data-verdict="${v}"]`);
    probe.setOutOfBand('beta', { b: 'by hand again' });
    await page.getByTestId('drift-refresh').click();
    await verdict('drifted').waitFor();
    await page.getByTestId('converge-button').click();
    await page.getByTestId('converge-review').waitFor();
    // while the admin reads the review, the irreversible value goes missing on the host too
    probe.setOutOfBand('alpha', { a: '1' });
    await page.getByTestId('converge-now').click();
    const refusal = page
      .getByTestId('drift-panel')
      .locator('[data-testid="error-notice"][data-code="NotConfirmed"]');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(
      /the core refused irreversible changes that were not confirmed.*not confirmed: alpha\/gone/,
    );
    expect(probe.state('beta')).toEqual({ b: 'by hand again' });
    // the drift, asked again, now names both values
    await page.locator('[data-testid="drift-row"][data-path="/plugins/alpha/values/gone"]').waitFor();
    await screenshot(page, '18-converge-not-confirmed');

    await page.getByTestId('converge-button').click();
    const box = page.locator('[data-testid="confirm-irreversible"][data-resource="alpha/gone"]');
    await box.waitFor();
    expect(await page.getByTestId('converge-now').isDisabled()).toBe(true);
    await box.check();
    await screenshot(page, '19-converge-confirm');
    await page.getByTestId('converge-now').click();
    await page.getByTestId('converge-result').getByText('Converged and verified.').waitFor();
    await verdict('in-sync').waitFor();
    expect(probe.state('alpha')).toEqual({ a: '1', gone: 'x' });
    expect(probe.state('beta')).toEqual({ b: '1' });
  });

  it("shows the host's node memory as the kernel reports it, updated by each Metrics signal", async () => {
    const meminfo = readFileSync('/sys/devices/system/node/node0/meminfo', 'utf8');
    const memTotal = Number(/^Node 0 MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1]);
    expect(memTotal).toBeGreaterThan(0);

    await page.getByTestId('tab-host').click();
    const totalKb = page.getByTestId('node-0-total-kb');
    await totalKb.waitFor();
    expect(Number((await totalKb.textContent())?.replace(/\D/g, ''))).toBe(memTotal);

    const measured = page.getByTestId('host-measured');
    const firstTime = await measured.getAttribute('data-time');
    expect(firstTime).toMatch(/^\d{4}-/);
    // a later measurement arrives as a signal (nobody polls): the time it was taken changes
    // (a locator, not waitForFunction: the console's CSP forbids the eval that one needs)
    await page
      .locator(
        `[data-testid="host-measured"]:not([data-time="${firstTime ?? ''}"]):not([data-signals="0"]):not([data-signals="1"])`,
      )
      .waitFor({ timeout: 10_000 });
    expect(await measured.textContent()).toMatch(/Live · measured/);
    // the native addon is built here: where the core runs is measured, not guessed
    expect(await text('core-affinity')).toMatch(/^[0-9][0-9,-]*$/);
    expect(await page.locator('[data-testid="cache-file"][data-name="audit/audit.sqlite"]').count()).toBe(1);
    await screenshot(page, '09-host');
  });

  it("shows the host's topology: node 0's CPUs as /sys/devices/system/node/node0/cpulist says", async () => {
    const cpulist = readFileSync('/sys/devices/system/node/node0/cpulist', 'utf8').trim();
    expect(cpulist).toMatch(/^\d[\d,-]*$/);
    const nodes = readFileSync('/sys/devices/system/node/online', 'utf8').trim();

    const panel = page.getByTestId('topology');
    const node0 = page.getByTestId('topology-node-0-cpus');
    await node0.waitFor();
    expect(await node0.textContent()).toBe(cpulist);
    // one node here: no distance matrix to show; several: one row per node
    expect(await page.getByTestId('topology-distances').count()).toBe(nodes === '0' ? 0 : 1);
    expect(Number(await text('topology-cores'))).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="topology-cache"]').count()).toBeGreaterThan(0);
    await panel.scrollIntoViewIfNeeded();
    await screenshot(page, '09a-host-topology');
  });

  it('says "unavailable" and why, where the core runs without its native addon', async () => {
    await sb.restartCore({ ...coreEnv, OP_DBUS_NATIVE_ADDON: '/nonexistent/opdbus_native.node' });
    await page.reload();
    await page.getByTestId('tab-host').click();
    const cpu = page.getByTestId('core-cpu');
    await cpu.getByText('unavailable').waitFor();
    expect(await cpu.textContent()).toBe('unavailable');
    expect(await text('core-unavailable')).toMatch(
      /not measured: no opdbus_native\.node built.*npm run build:native/,
    );
    const file = page.locator('[data-testid="cache-file"][data-name="audit/audit.sqlite"]');
    expect(await file.textContent()).toMatch(/unavailable/);
    expect(await text('files-unavailable')).toMatch(/not measured: no opdbus_native\.node built/);
    expect(await text('placement')).toMatch(/Not pinned/);
    // node memory comes from sysfs, not the addon: still measured
    await page.getByTestId('node-0-total-kb').waitFor();
    await screenshot(page, '09b-host-no-native-addon');
  });

  it('shows AUDIT LOG TAMPERING after history is rewritten on the host, though the chain verifies there', async () => {
    // root on the host rewrites entry 2, re-chains, re-hashes and drops the core's own checkpoints:
    // the host's log is self-consistent again, and only the witness's earlier checkpoint can tell
    rewriteAuditHistory(sb.dataDir, 2, { dropCheckpoints: true });
    await sb.restartCore(coreEnv);
    await page.reload();
    await page.getByText('Connected to the core via op-dbus serve').waitFor();
    await page.getByTestId('tab-audit-alert').waitFor();
    await page.getByTestId('tab-audit').click();
    const witness = page.locator('[data-testid="witness"][data-status="tampering"]');
    await witness.waitFor();
    const banner = (await witness.textContent()) ?? '';
    expect(banner).toMatch(/AUDIT LOG TAMPERING/);
    expect(banner).toMatch(/history was rewritten/);
    expect(await witness.getAttribute('role')).toBe('alert');
    await page.getByTestId('chain-state').getByText('Chain verified').waitFor();
    await screenshot(page, '10-witness-tampering');
  });
});
