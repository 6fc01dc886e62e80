// What the Node tests (the SDK tests in tests/sdk/node/, the playground tests in
// tests/playground/) share: the binaries they need, starting the Chat Completions stand-in
// (LLM_STANDIN_BIN) and the server (ASSISTANTS_BIN) on free ports, and stopping them. Each
// suite's harness.mjs adds its own settings. Not a test file itself.

import { once } from 'node:events';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

const READY_TIMEOUT_MS = 20_000;

/**
 * The executable the environment variable `name` names (or `fallback`); a missing one is a
 * failure, not a skip. `hint` says how to get it.
 */
export function requiredBin(name, fallback = '', hint = '') {
  const value = (process.env[name] || fallback || '').trim();
  if (!value) {
    throw new Error(`${name} is not set; run the suite through scripts/test.sh`);
  }
  try {
    fs.accessSync(value, fs.constants.X_OK);
  } catch {
    throw new Error(`${name}=${value} is not an executable file${hint ? ` (${hint})` : ''}`);
  }
  return value;
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function tail(file, max = 4000) {
  try {
    return fs.readFileSync(file, 'utf8').slice(-max);
  } catch (e) {
    return `<cannot read ${file}: ${e.message}>`;
  }
}

export async function stopProcess(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Starts llm-standin on a free port; resolves with its /v1 base URL. */
export async function startStandIn(logFile) {
  const bin = requiredBin('LLM_STANDIN_BIN');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(bin, ['0'], { stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const lines = readline.createInterface({ input: child.stdout });
  let timer;
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line),
    once(child, 'exit').then(([code]) => {
      throw new Error(`llm-standin exited with ${code}: ${tail(logFile)}`);
    }),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`llm-standin did not announce its address: ${tail(logFile)}`)),
        10_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  const m = /^listening on (http:\/\/\S+\/v1)$/.exec(first.trim());
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`unexpected first line from llm-standin: ${JSON.stringify(first)}`);
  }
  lines.on('line', () => {}); // keep draining
  return { child, baseURL: m[1], root: m[1].slice(0, -'/v1'.length) };
}

/** Starts ASSISTANTS_BIN with `env` on a free port; resolves when it answers HTTP. */
export async function startService(dir, logFile, env) {
  const bin = requiredBin('ASSISTANTS_BIN');
  const port = await freePort();
  const log = fs.openSync(logFile, 'a');
  const child = spawn(bin, [], {
    cwd: dir,
    stdio: ['ignore', log, log],
    env: { ...env, PORT: String(port), BIND: '127.0.0.1' },
  });
  fs.closeSync(log);
  const baseURL = `http://127.0.0.1:${port}/v1`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`server exited with ${child.exitCode} during start-up:\n${tail(logFile)}`);
    }
    try {
      await fetch(`${baseURL}/assistants`); // any HTTP answer (401) means it is serving
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopProcess(child, 'SIGKILL');
      throw new Error(`server did not answer within ${READY_TIMEOUT_MS} ms:\n${tail(logFile)}`);
    }
    await delay(100);
  }
  return { child, baseURL };
}

/**
 * Starts the server on a local store (in `dir`) taking the client key `key` for `tenant`,
 * talking to `standin`, with `env` added to its settings; resolves when it answers.
 */
export async function startLocalServer(dir, standin, logFile, { key, tenant, env = {} }) {
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  return startService(dir, logFile, {
    ...process.env,
    STORAGE: 'local',
    DATA_DIR: dataDir,
    ASSISTANTS_API_KEYS: `${key}=${tenant}`,
    OPENAI_BASE_URL: standin.baseURL,
    OPENAI_API_KEY: 'sk-standin',
    RUST_LOG: 'info',
    ...env,
  });
}
