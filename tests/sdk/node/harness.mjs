// What the Node SDK tests share: the Chat Completions stand-in and the server (or a proxy in
// front of it) on free ports, with the SDK tests' key and tenant; starting and stopping
// processes is tests/support/processes.mjs. Not a test file itself.

import fs from 'node:fs';
import path from 'node:path';
import { startLocalServer, startService } from '../../support/processes.mjs';

export { startStandIn, stopProcess, tail } from '../../support/processes.mjs';

export const API_KEY = 'sk-node-test';
export const TENANT = 'tenantnode';

/** Starts the server (local store in `dir`) talking to `standin`; resolves when it answers. */
export async function startServer(dir, standin, logFile) {
  return startLocalServer(dir, standin, logFile, { key: API_KEY, tenant: TENANT });
}

/**
 * Starts a BACKEND=proxy server in front of `upstream` (the same client key, its tenant mapped
 * to the same tenant upstream; no model, a DATA_DIR of its own); resolves when it answers.
 */
export async function startProxy(dir, upstream, logFile) {
  const dataDir = path.join(dir, 'proxy-data');
  fs.mkdirSync(dataDir, { recursive: true });
  const env = { ...process.env };
  for (const name of ['OPENAI_BASE_URL', 'OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT', 'AZURE_OPENAI_API_KEY']) {
    delete env[name];
  }
  return startService(dir, logFile, {
    ...env,
    BACKEND: 'proxy',
    UPSTREAM_BASE_URL: upstream.baseURL,
    UPSTREAM_TENANT_KEYS: `${TENANT}=${API_KEY}`,
    STORAGE: 'local',
    DATA_DIR: dataDir,
    ASSISTANTS_API_KEYS: `${API_KEY}=${TENANT}`,
    RUST_LOG: 'info',
  });
}
