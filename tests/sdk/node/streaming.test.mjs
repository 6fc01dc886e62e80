// Streaming conformance with the official Node SDK (openai 7.57.0, whose AssistantStream
// validates event order strictly: a delta needs its snapshot, one active message/step at a
// time, no duplicate ids, a final run event before finalRun()).
//
// Starts its own Chat Completions stand-in and server (local store in a temp dir). The same
// scenarios run twice: against that server directly, and through a second server with
// BACKEND=proxy in front of it (same client key, mapped to the same tenant upstream).
// Needs ASSISTANTS_BIN and LLM_STANDIN_BIN (scripts/test.sh exports both); missing either is a
// failure, not a skip.
//
//   node --test tests/sdk/node/

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import {
  API_KEY,
  startProxy,
  startServer,
  startStandIn,
  stopProcess,
  tail,
} from './harness.mjs';


const RUN_START = ['thread.run.created', 'thread.run.queued', 'thread.run.in_progress'];
const TEXT_ANSWER = [
  'thread.run.step.created',
  'thread.run.step.in_progress',
  'thread.message.created',
  'thread.message.in_progress',
  'thread.message.delta',
  'thread.message.completed',
  'thread.run.step.completed',
  'thread.run.completed',
];

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

/** Collapses runs of the same delta event into one entry. */
function collapse(names) {
  const out = [];
  for (const n of names) {
    if ((n === 'thread.message.delta' || n === 'thread.run.step.delta') && out.at(-1) === n) continue;
    out.push(n);
  }
  return out;
}

/** Records what an AssistantStream emits; `errors` collects the 'error' events. */
function record(stream) {
  const rec = { names: [], events: [], deltas: [], errors: [] };
  stream.on('event', (e) => {
    rec.names.push(e.event);
    rec.events.push(e);
  });
  stream.on('textDelta', (delta) => rec.deltas.push(delta.value ?? ''));
  stream.on('error', (err) => rec.errors.push(err));
  return rec;
}

function textOf(message) {
  return message.content.map((p) => (p.type === 'text' ? p.text.value : `<${p.type}>`)).join('');
}

// How the client reaches the stored server: directly, or through a proxy server.
const MODES = [
  { name: 'local store', proxy: false },
  { name: 'through a proxy to a local store', proxy: true },
];

for (const mode of MODES) describe(`Node SDK streaming (openai 7.57, ${mode.name})`, () => {
  let tmp;
  let standin;
  let server;
  let proxy;
  let client;

  const llm = {
    async script(model, ...responses) {
      const res = await fetch(`${standin.root}/_script`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, responses }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { scripted: responses.length });
    },
    async requests(model) {
      const res = await fetch(`${standin.root}/_requests?model=${encodeURIComponent(model)}`);
      assert.equal(res.status, 200);
      return res.json();
    },
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'assistants-node-'));
    standin = await startStandIn(path.join(tmp, 'standin.log'));
    server = await startServer(tmp, standin, path.join(tmp, 'server.log'));
    if (mode.proxy) proxy = await startProxy(tmp, server, path.join(tmp, 'proxy.log'));
    const baseURL = (proxy ?? server).baseURL;
    client = new OpenAI({ baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await stopProcess(proxy?.child, 'SIGTERM');
    await stopProcess(server?.child, 'SIGTERM');
    await stopProcess(standin?.child, 'SIGINT');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function setup(...userTexts) {
    const model = `m-${randomUUID()}`;
    const assistant = await client.beta.assistants.create({
      model,
      instructions: 'You are a terse test assistant.',
      tools: TOOLS,
    });
    const thread = await client.beta.threads.create({
      messages: userTexts.map((content) => ({ role: 'user', content })),
    });
    return { model, assistant, thread };
  }

  function serverLog() {
    const stored = tail(path.join(tmp, 'server.log'), 3000);
    if (!mode.proxy) return stored;
    return `--- proxy ---\n${tail(path.join(tmp, 'proxy.log'), 2000)}\n--- upstream ---\n${stored}`;
  }

  function checkTextAnswer(rec, { runId, threadId, text }) {
    const created = rec.events.find((e) => e.event === 'thread.run.step.created' && e.data.type === 'message_creation');
    assert.ok(created, `no message_creation step in ${rec.names}`);
    const msgId = created.data.step_details.message_creation.message_id;
    const msgCreated = rec.events.find((e) => e.event === 'thread.message.created');
    assert.equal(msgCreated.data.id, msgId);
    assert.equal(msgCreated.data.thread_id, threadId);
    assert.equal(msgCreated.data.run_id, runId);
    for (const e of rec.events.filter((e) => e.event === 'thread.message.delta')) {
      assert.equal(e.data.id, msgId);
      assert.equal(Object.hasOwn(e.data.delta, 'id'), false, 'message delta carries an id');
    }
    assert.equal(rec.deltas.join(''), text);
    const done = rec.events.find((e) => e.event === 'thread.message.completed');
    assert.equal(done.data.status, 'completed');
    assert.equal(textOf(done.data), text);
    const runDone = rec.events.find((e) => e.event === 'thread.run.completed');
    assert.equal(runDone.data.id, runId);
    assert.ok(runDone.data.usage && runDone.data.usage.total_tokens > 0, 'run.completed lacks usage');
  }

  test('text answer: runs.stream, textDelta, finalRun, finalMessages', async () => {
    const text = 'Node streaming works fine';
    const { model, assistant, thread } = await setup('Does Node streaming work?');
    await llm.script(model, { text });

    const stream = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
    const rec = record(stream);
    const run = await stream.finalRun();
    const messages = await stream.finalMessages();

    assert.deepEqual(rec.errors, [], serverLog());
    assert.deepEqual(collapse(rec.names), [...RUN_START, ...TEXT_ANSWER]);
    assert.equal(run.status, 'completed');
    assert.equal(run.thread_id, thread.id);
    checkTextAnswer(rec, { runId: run.id, threadId: thread.id, text });
    assert.equal(messages.length, 1);
    assert.equal(textOf(messages[0]), text);

    const stored = await client.beta.threads.messages.list(thread.id);
    assert.equal(stored.data[0].id, messages[0].id);
    assert.equal(textOf(stored.data[0]), text);
    assert.equal((await llm.requests(model)).length, 1);
  });

  test('function call: stream to requires_action, then submitToolOutputsStream to completion', async () => {
    const { model, assistant, thread } = await setup('Weather in Paris and time in Tokyo?');
    await llm.script(
      model,
      {
        tool_calls: [
          { name: 'get_weather', arguments: JSON.stringify({ city: 'Paris' }) },
          { name: 'get_time', arguments: JSON.stringify({ city: 'Tokyo' }) },
        ],
      },
      { text: 'Sunny in Paris, 9pm in Tokyo.' },
    );

    const first = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
    const rec1 = record(first);
    const toolCallsDone = [];
    first.on('toolCallDone', (tc) => toolCallsDone.push(tc));
    const run = await first.finalRun();
    assert.deepEqual(rec1.errors, [], serverLog());
    assert.deepEqual(collapse(rec1.names), [
      ...RUN_START,
      'thread.run.step.created',
      'thread.run.step.in_progress',
      'thread.run.step.delta',
      'thread.run.requires_action',
    ]);
    assert.equal(run.status, 'requires_action');
    const calls = run.required_action.submit_tool_outputs.tool_calls;
    assert.deepEqual(
      calls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]),
      [
        ['function', 'get_weather', { city: 'Paris' }],
        ['function', 'get_time', { city: 'Tokyo' }],
      ],
    );
    // The SDK's accumulated tool calls (from the step deltas) agree with required_action.
    const steps = await first.finalRunSteps();
    assert.equal(steps.length, 1);
    assert.deepEqual(
      steps[0].step_details.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]),
      calls.map((c) => [c.id, c.function.name, c.function.arguments]),
    );
    assert.deepEqual(
      toolCallsDone.map((c) => c.id),
      calls.map((c) => c.id),
    );

    const outputs = { get_weather: 'sunny', get_time: '21:00' };
    const second = client.beta.threads.runs.submitToolOutputsStream(run.id, {
      thread_id: thread.id,
      tool_outputs: calls.map((c) => ({ tool_call_id: c.id, output: outputs[c.function.name] })),
    });
    const rec2 = record(second);
    const finalRun = await second.finalRun();
    const messages = await second.finalMessages();
    assert.deepEqual(rec2.errors, [], serverLog());
    assert.deepEqual(collapse(rec2.names), [
      'thread.run.step.completed',
      'thread.run.queued',
      'thread.run.in_progress',
      ...TEXT_ANSWER,
    ]);
    const toolStep = rec2.events[0].data;
    assert.equal(toolStep.id, steps[0].id);
    assert.deepEqual(
      toolStep.step_details.tool_calls.map((c) => [c.id, c.function.output]),
      calls.map((c) => [c.id, outputs[c.function.name]]),
    );
    assert.equal(finalRun.id, run.id);
    assert.equal(finalRun.status, 'completed');
    checkTextAnswer(rec2, { runId: run.id, threadId: thread.id, text: 'Sunny in Paris, 9pm in Tokyo.' });
    assert.deepEqual(messages.map(textOf), ['Sunny in Paris, 9pm in Tokyo.']);

    const reqs = await llm.requests(model);
    assert.equal(reqs.length, 2);
    assert.deepEqual(
      reqs[1].messages.slice(-2).map((m) => [m.role, m.tool_call_id, m.content]),
      calls.map((c) => ['tool', c.id, outputs[c.function.name]]),
    );
  });

  test('createAndRunStream starts with thread.created', async () => {
    const model = `m-${randomUUID()}`;
    const text = 'Hello from a new thread';
    await llm.script(model, { text });
    const assistant = await client.beta.assistants.create({ model, tools: TOOLS });
    const stream = client.beta.threads.createAndRunStream({
      assistant_id: assistant.id,
      thread: { messages: [{ role: 'user', content: 'start' }] },
    });
    const rec = record(stream);
    const run = await stream.finalRun();
    assert.deepEqual(rec.errors, [], serverLog());
    assert.deepEqual(collapse(rec.names), ['thread.created', ...RUN_START, ...TEXT_ANSWER]);
    const thread = rec.events[0].data;
    assert.equal(thread.object, 'thread');
    assert.equal(run.thread_id, thread.id);
    assert.equal(run.status, 'completed');
    checkTextAnswer(rec, { runId: run.id, threadId: thread.id, text });
  });
  test('text and tool calls in one answer: message closed before the tool step opens', async () => {
    const { model, assistant, thread } = await setup('Check the weather in Oslo');
    await llm.script(model, {
      text: 'Let me check.',
      tool_calls: [{ name: 'get_weather', arguments: JSON.stringify({ city: 'Oslo' }) }],
    });
    const stream = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
    const rec = record(stream);
    const run = await stream.finalRun();
    assert.deepEqual(rec.errors, [], serverLog());
    assert.deepEqual(collapse(rec.names), [
      ...RUN_START,
      'thread.run.step.created',
      'thread.run.step.in_progress',
      'thread.message.created',
      'thread.message.in_progress',
      'thread.message.delta',
      'thread.message.completed',
      'thread.run.step.completed',
      'thread.run.step.created',
      'thread.run.step.in_progress',
      'thread.run.step.delta',
      'thread.run.requires_action',
    ]);
    assert.equal(run.status, 'requires_action');
    assert.equal(rec.deltas.join(''), 'Let me check.');
    assert.deepEqual(
      run.required_action.submit_tool_outputs.tool_calls.map((c) => c.function.name),
      ['get_weather'],
    );
    await client.beta.threads.runs.cancel(run.id, { thread_id: thread.id });
  });

  test('cancel mid-stream: finalRun() resolves to the cancelled run', async () => {
    const { model, assistant, thread } = await setup('count slowly');
    await llm.script(model, { text: 'one two three four five six seven eight', chunk_delay_ms: 300 });
    const stream = client.beta.threads.runs.stream(thread.id, { assistant_id: assistant.id });
    const rec = record(stream);
    let cancelled;
    stream.on('textDelta', () => {
      if (!cancelled) {
        const runId = rec.events.find((e) => e.event === 'thread.run.created').data.id;
        cancelled = client.beta.threads.runs.cancel(runId, { thread_id: thread.id });
      }
    });
    let final;
    let failure;
    try {
      final = await stream.finalRun();
    } catch (e) {
      failure = e;
    }
    const cancelReply = await cancelled;
    assert.ok(['cancelling', 'cancelled'].includes(cancelReply.status), cancelReply.status);
    assert.equal(
      failure,
      undefined,
      `finalRun() rejected (${failure}); events: ${collapse(rec.names).join(', ')}`,
    );
    assert.equal(final.status, 'cancelled', `events: ${collapse(rec.names).join(', ')}`);
    assert.equal(rec.names.at(-1), 'thread.run.cancelled');
  });
});
