// What the playground tests share: the real server (ASSISTANTS_BIN) on a local store with a
// key, the scripted Chat Completions stand-in (LLM_STANDIN_BIN), and Debian's Chromium
// (/usr/bin/chromium, or CHROMIUM_BIN) driven by playwright-core, with every console error,
// uncaught exception and Content-Security-Policy violation of a page recorded.
// Missing binaries are failures, not skips. Starting and stopping the processes is
// tests/support/processes.mjs, shared with the SDK tests.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  delay, requiredBin, startLocalServer, startStandIn, stopProcess, tail,
} from '../support/processes.mjs';

export { delay } from '../support/processes.mjs';

export const API_KEY = 'sk-playground-test-key';
const TENANT = 'tenantplayground';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOTS = path.join(ROOT, 'target', 'playground-screenshots');

// The flags this machine needs (no sandbox as root, no background connections to hosts the
// network refuses); playwright-core gives each launch a fresh profile directory.
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Starts the server (local store in `dir`, the local code interpreter) talking to `standin`. */
async function startServer(dir, standin, logFile) {
  const { child, baseURL } = await startLocalServer(dir, standin, logFile, {
    key: API_KEY, tenant: TENANT, env: { CODE_INTERPRETER: 'local' },
  });
  return { child, base: baseURL.slice(0, -'/v1'.length) };
}

/** Starts everything; `env.close()` stops it. */
export async function startEnvironment() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'assistants-playground-'));
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const standin = await startStandIn(path.join(tmp, 'standin.log'));
  const serverLog = path.join(tmp, 'server.log');
  const server = await startServer(tmp, standin, serverLog);
  const browser = await chromium.launch({
    executablePath: requiredBin(
      'CHROMIUM_BIN', '/usr/bin/chromium', 'scripts/chromium-deps.sh installs chromium',
    ),
    args: CHROMIUM_FLAGS,
    headless: true,
  });
  const env = {
    tmp,
    base: server.base,
    browser,
    serverLog: () => tail(serverLog, 6000),
    serverLogPath: serverLog,
    async close() {
      await browser.close().catch(() => {});
      await stopProcess(server.child, 'SIGTERM');
      await stopProcess(standin.child, 'SIGINT');
      fs.rmSync(tmp, { recursive: true, force: true });
    },
    /** Appends scripted answers for `model` to the stand-in. */
    async script(model, ...responses) {
      const res = await fetch(`${standin.root}/_script`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, responses }),
      });
      assert.equal(res.status, 200);
    },
    async llmRequests(model) {
      const res = await fetch(`${standin.root}/_requests?model=${encodeURIComponent(model)}`);
      return res.json();
    },
    /** A call of the API with the test's key (to set things up and to check the page's work). */
    async api(method, apiPath, body) {
      const res = await fetch(`${server.base}/v1/${apiPath}`, {
        method,
        headers: {
          Authorization: `Bearer ${API_KEY}`,
          'OpenAI-Beta': 'assistants=v2',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = await res.json();
      assert.ok(res.ok, `${method} ${apiPath}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    /** Opens the playground in a fresh context and enters `key` (none: no key). */
    async open({ key = API_KEY, width = 1400, height = 1000, hash = '' } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
      const page = await context.newPage();
      page.problems = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') {
          page.problems.push(`console ${msg.type()}: ${msg.text()}`);
        }
      });
      page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
      // CSP violations are also console errors; recording them here names the directive.
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      await page.goto(`${server.base}/playground/${hash}`);
      if (key) {
        await page.fill('#api-key', key);
        await page.click('#key-save');
      }
      return page;
    },
  };
  return env;
}

/**
 * The page logged no error or warning, threw nothing and broke no policy. `expectedStatuses`
 * are HTTP statuses of API answers the test provoked on purpose (Chromium logs each non-2xx
 * fetch as "Failed to load resource").
 */
export function assertNoConsoleErrors(page, expectedStatuses = []) {
  const unexpected = page.problems.filter((p) => !expectedStatuses.some(
    (s) => p.includes(`Failed to load resource: the server responded with a status of ${s}`),
  ));
  assert.deepEqual(unexpected, [], 'the page logged errors');
}

export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Waits until `predicate()` is truthy (polled), or fails naming `what`. */
export async function until(predicate, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}
