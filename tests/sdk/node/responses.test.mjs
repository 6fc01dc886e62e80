// The Responses stream with the official Node SDK (openai 7.57.0): `client.responses.stream`,
// whose accumulator (lib/responses/ResponseStream + response-accumulator) rejects any event
// out of order, an unknown event type, an item id that changes, or an unfinished item at
// `response.completed`. A text answer and a function call, against the server directly and
// through a proxy in front of it. Needs ASSISTANTS_BIN and LLM_STANDIN_BIN.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { API_KEY, startProxy, startServer, startStandIn, stopProcess, tail } from './harness.mjs';

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

for (const proxied of [false, true]) describe(`Node SDK responses.stream (${proxied ? 'through a proxy' : 'local store'})`, () => {
  let tmp;
  let standin;
  let server;
  let proxy;
  let client;

  async function script(model, ...responses) {
    const res = await fetch(`${standin.root}/_script`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, responses }),
    });
    assert.equal(res.status, 200);
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'assistants-node-responses-'));
    standin = await startStandIn(path.join(tmp, 'standin.log'));
    server = await startServer(tmp, standin, path.join(tmp, 'server.log'));
    if (proxied) proxy = await startProxy(tmp, server, path.join(tmp, 'proxy.log'));
    client = new OpenAI({ baseURL: (proxy ?? server).baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await stopProcess(proxy?.child, 'SIGTERM');
    await stopProcess(server?.child, 'SIGTERM');
    await stopProcess(standin?.child, 'SIGINT');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const log = () => tail(path.join(tmp, 'server.log'), 3000);

  test('text answer: every event accepted, finalResponse, output_text', async () => {
    const model = `m-${randomUUID()}`;
    await script(model, { text: 'Node responses stream fine' });
    const stream = client.responses.stream({ model, input: 'Do they?' });
    const types = [];
    const deltas = [];
    stream.on('event', (e) => types.push(e.type));
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(types[0], 'response.created', log());
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(deltas.join(''), 'Node responses stream fine');
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, 'Node responses stream fine');
    const stored = await client.responses.retrieve(final.id);
    assert.equal(stored.output[0].id, final.output[0].id);
  });

  test('function call: item added, arguments streamed, item done', async () => {
    const model = `m-${randomUUID()}`;
    await script(model, { tool_calls: [{ name: 'get_weather', arguments: '{"city":"Lima"}' }] });
    const stream = client.responses.stream({ model, input: 'Lima?', tools: [WEATHER] });
    const argDeltas = [];
    stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.output.length, 1, log());
    const fc = final.output[0];
    assert.equal(fc.type, 'function_call');
    assert.equal(fc.name, 'get_weather');
    assert.deepEqual(JSON.parse(fc.arguments), { city: 'Lima' });
    assert.equal(argDeltas.join(''), fc.arguments);
    // The round trip: the output in a new response that continues this one.
    await script(model, { text: 'Sunny in Lima.' });
    const next = await client.responses.create({
      model,
      previous_response_id: final.id,
      input: [{ type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }],
      tools: [WEATHER],
    });
    assert.equal(next.output_text, 'Sunny in Lima.');
  });
});
