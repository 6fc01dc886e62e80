// The playground (/playground/) in real headless Chromium (Debian's, driven by
// playwright-core) against the real server and the scripted model stand-in. Each test uses
// the page as a person would (forms, buttons, file pickers) and checks the result through the
// page and through the API; every page must log no error (console, exceptions, CSP).
// Screenshots of the main views go to target/playground-screenshots/ (not asserted on).
//
//   ASSISTANTS_BIN=… LLM_STANDIN_BIN=… node --test tests/playground/

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import {
  startEnvironment, assertNoConsoleErrors, screenshot, until, delay, API_KEY,
} from './harness.mjs';

const NORWAY = 'Norway is a country in northern Europe. Its capital is Oslo, which lies at the '
  + 'head of the Oslofjord. Bergen is the second largest city.\n';

const PLOT = `import matplotlib
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [2, 4, 1])
plt.title('Test figure')
plt.show()
with open('/mnt/data/numbers.csv', 'w') as f:
    f.write('x,y\\n1,2\\n2,4\\n3,1\\n')
print('plotted')
`;

function model() {
  return `m-${randomUUID()}`;
}

describe('playground', () => {
  let env;

  before(async () => {
    env = await startEnvironment();
  });

  after(async () => {
    await env?.close();
  });

  async function assistant(body) {
    return env.api('POST', 'assistants', { model: model(), ...body });
  }

  /** The thread page with `asst` chosen, `text` sent, and the run streaming. */
  async function sendInThread(page, asst, text) {
    await page.evaluate(() => { location.hash = '#/threads'; });
    const select = page.getByLabel('Assistant', { exact: true });
    await until(async () => (await select.locator(`option[value="${asst.id}"]`).count()) === 1, 'the assistant in the list');
    await select.selectOption(asst.id);
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.getByRole('button', { name: 'Send and run' }).click();
  }

  async function runStatus(page) {
    return page.locator('#run-status').getAttribute('data-status');
  }

  async function waitForRun(page, statuses, what) {
    await until(async () => statuses.includes(await runStatus(page)), what, 30_000);
    return runStatus(page);
  }

  test('the page is served with a strict Content-Security-Policy, and / sends browsers to it', async () => {
    const res = await fetch(`${env.base}/playground/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const root = await fetch(`${env.base}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), 'playground/');
    const js = await fetch(`${env.base}/playground/js/main.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const again = await fetch(`${env.base}/playground/js/main.js`, { headers: { 'if-none-match': js.headers.get('etag') } });
    assert.equal(again.status, 304);
  });

  test('1. an assistant with a function tool, created through the form, is in the API list with those fields', async () => {
    const page = await env.open({ hash: '#/assistants/new' });
    const name = `Weather bot ${randomUUID().slice(0, 8)}`;
    const m = model();
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Model', { exact: true }).fill(m);
    await page.getByLabel('Description', { exact: true }).fill('Answers weather questions');
    await page.getByLabel('Instructions', { exact: true }).fill('You are a weather bot. Use the tool.');
    await page.getByLabel('Temperature', { exact: true }).fill('0.3');
    await page.getByRole('button', { name: 'Add function' }).click();
    const editor = page.getByLabel('Function 1', { exact: true });
    // Invalid JSON is reported at once and blocks saving.
    await editor.fill('{"name": "get_weather", "parameters": {');
    await until(async () => /Invalid JSON/.test(await page.locator('.function-editor .json-status').textContent()), 'the JSON error');
    await page.getByRole('button', { name: 'Create assistant' }).click();
    await until(async () => /Function 1: Invalid JSON/.test(await page.locator('.assistant-form > .error-box').textContent()), 'the save error');
    // A definition that is JSON but not a valid function is reported too.
    await editor.fill('{"name": "get weather!"}');
    await until(async () => /"name" is required/.test(await page.locator('.function-editor .json-status').textContent()), 'the name error');
    const fn = {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    };
    await editor.fill(JSON.stringify(fn, null, 2));
    await until(async () => (await page.locator('.function-editor .json-status').textContent()) === 'Valid JSON.', 'valid JSON');
    await page.getByRole('button', { name: 'Add pair' }).click();
    await page.getByLabel('metadata key').fill('team');
    await page.getByLabel('metadata value').fill('weather');
    await page.getByRole('button', { name: 'Create assistant' }).click();
    await until(async () => /#\/assistants\/asst_/.test(page.url()), 'the new assistant page');
    await until(async () => (await page.locator('.item-list a', { hasText: name }).count()) === 1, 'the assistant in the list');
    await screenshot(page, '1-assistant-editor');

    const list = await env.api('GET', 'assistants?limit=100');
    const created = list.data.find((a) => a.name === name);
    assert.ok(created, `no assistant named ${name} in ${JSON.stringify(list.data.map((a) => a.name))}`);
    assert.equal(page.url().split('#/assistants/')[1], created.id);
    assert.equal(created.model, m);
    assert.equal(created.description, 'Answers weather questions');
    assert.equal(created.instructions, 'You are a weather bot. Use the tool.');
    assert.equal(created.temperature, 0.3);
    assert.deepEqual(created.metadata, { team: 'weather' });
    assert.equal(created.tools.length, 1);
    assert.equal(created.tools[0].type, 'function');
    assert.equal(created.tools[0].function.name, 'get_weather');
    assert.equal(created.tools[0].function.description, 'Weather in a city');
    assert.deepEqual(created.tools[0].function.parameters, fn.parameters);

    // Editing it: a json_schema response format goes through the schema editor.
    await page.getByLabel('Format', { exact: true }).selectOption('json_schema');
    await page.getByLabel('JSON schema', { exact: true }).fill('{"type": "object", "properties": {"temp": {"type": "number"}}}');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await until(async () => /Saved asst_/.test(await page.locator('.saved-note').textContent()), 'the save');
    const changed = await env.api('GET', `assistants/${created.id}`);
    assert.equal(changed.response_format.type, 'json_schema');
    assert.deepEqual(changed.response_format.json_schema.schema.properties, { temp: { type: 'number' } });
    assert.equal(changed.tools[0].function.name, 'get_weather');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('the assistant form attaches a new vector store with an uploaded file, and files for code_interpreter', async () => {
    const page = await env.open({ hash: '#/assistants/new' });
    const name = `Researcher ${randomUUID().slice(0, 8)}`;
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Model', { exact: true }).fill(model());
    await page.getByLabel('file_search', { exact: true }).check();
    await page.getByLabel('New store', { exact: true }).fill('Research notes');
    await page.getByRole('button', { name: 'Create store' }).click();
    const store = page.getByLabel('Vector store', { exact: true });
    await until(async () => /^vs_/.test(await store.inputValue()), 'the new store selected');
    const storeId = await store.inputValue();
    await page.getByLabel('Upload files into the selected store').setInputFiles({
      name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from('# Notes\n\nGlaciers move slowly.\n'),
    });
    // The counts follow ingestion until the file is ready.
    await until(async () => /completed: 1\/1 ready/.test(await page.locator('#store-counts').textContent()), 'the store counts', 30_000);
    await page.getByLabel('code_interpreter', { exact: true }).check();
    await page.getByLabel('Upload files for code_interpreter').setInputFiles({
      name: 'data.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n'),
    });
    const uploaded = page.locator('.uploads .upload-row[data-filename="data.csv"]');
    await until(async () => (await uploaded.getAttribute('data-file-id')) !== null, 'the csv upload');
    const csvId = await uploaded.getAttribute('data-file-id');
    await until(async () => page.locator(`.checklist input[value="${csvId}"]`).isChecked().catch(() => false), 'the csv checked');
    await page.getByRole('button', { name: 'Create assistant' }).click();
    await until(async () => /#\/assistants\/asst_/.test(page.url()), 'the new assistant page');
    const created = await env.api('GET', `assistants/${page.url().split('#/assistants/')[1]}`);
    assert.equal(created.name, name);
    assert.deepEqual(created.tools.map((t) => t.type).sort(), ['code_interpreter', 'file_search']);
    assert.deepEqual(created.tool_resources.file_search.vector_store_ids, [storeId]);
    assert.deepEqual(created.tool_resources.code_interpreter.file_ids, [csvId]);
    const storeFiles = await env.api('GET', `vector_stores/${storeId}/files`);
    assert.equal(storeFiles.data.length, 1);
    // The editor of the saved assistant shows the same choices.
    await until(async () => (await page.getByLabel('Vector store', { exact: true }).inputValue()) === storeId, 'the store shown');
    assert.equal(await page.getByLabel('code_interpreter', { exact: true }).isChecked(), true);
    await screenshot(page, 'assistant-tools');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('2. a slow streamed answer grows in the page while it arrives', async () => {
    const asst = await assistant({ name: 'Streamer' });
    const words = 'one two three four five six seven eight nine ten eleven twelve';
    await env.script(asst.model, { text: words, chunk_delay_ms: 200 });
    const page = await env.open();
    await sendInThread(page, asst, 'Count slowly, please.');
    // Sample the answer's text while the run streams.
    const seen = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const text = await page.locator('.message[data-role="assistant"]').last().textContent().catch(() => null);
      const status = await runStatus(page);
      if (text !== null) {
        const body = await page.locator('.message[data-role="assistant"] .message-body').last().textContent();
        if (seen.length === 0 || seen.at(-1).body !== body) seen.push({ body, status, at: Date.now() });
      }
      if (status === 'completed' || Date.now() > deadline) break;
      await delay(40);
    }
    assert.equal(await runStatus(page), 'completed', env.serverLog());
    const bodies = seen.map((s) => s.body.trim()).filter((b) => b.length > 0);
    assert.equal(bodies.at(-1), words);
    // At least four partial texts, each a prefix of the next, seen before the run ended.
    const partial = seen.filter((s) => s.body.trim().length > 0 && s.body.trim() !== words && s.status !== 'completed');
    assert.ok(partial.length >= 4, `the text did not grow in steps: ${JSON.stringify(seen)}`);
    for (let i = 1; i < bodies.length; i++) {
      assert.ok(bodies[i].startsWith(bodies[i - 1]) && bodies[i].length > bodies[i - 1].length, JSON.stringify(bodies));
    }
    assert.ok(seen.at(-1).at - partial[0].at >= 600, 'the growth spanned less time than the stream');
    // Usage is shown once the run ends; the thread is remembered.
    await until(async () => /Tokens: \d+ prompt \+ \d+ completion = \d+/.test(await page.locator('.run-usage').textContent()), 'the usage');
    assert.equal(await page.locator('.recent-threads a').count() >= 1, true);
    await screenshot(page, '2-thread-streamed');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('a thread opens by id with its messages and its last run; an unknown id says so', async () => {
    const asst = await assistant({ name: 'Reopen' });
    // The model is slow to answer, so the run is still going when the page opens it.
    await env.script(asst.model, { text: 'Stored answer.', answer_delay_ms: 2500 });
    const thread = await env.api('POST', 'threads', { messages: [{ role: 'user', content: 'Hello there' }] });
    const run = await env.api('POST', `threads/${thread.id}/runs`, { assistant_id: asst.id });
    const page = await env.open({ hash: '#/threads' });
    await page.getByLabel('Thread id', { exact: true }).fill(thread.id);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    // The run was queued (not streamed): the page follows it until it ends.
    await until(async () => (await page.locator('#run-status').getAttribute('data-run-id')) === run.id, 'the run shown');
    assert.ok(['queued', 'in_progress'].includes(await runStatus(page)), await runStatus(page));
    await waitForRun(page, ['completed'], 'the queued run');
    await until(async () => /Stored answer\./.test(await page.locator('.messages').textContent()), 'the answer');
    assert.match(await page.locator('.messages').textContent(), /Hello there/);
    assert.equal(await page.locator('.steps .step[data-type="message_creation"]').count(), 1);
    assert.equal(await page.locator('.recent-threads a', { hasText: thread.id }).count(), 1);
    // An id that does not exist: the 404 in words, and the page goes on.
    await page.evaluate(() => { location.hash = '#/threads'; });
    await page.getByLabel('Thread id', { exact: true }).fill('thread_doesnotexist0000000000');
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await until(async () => /No thread found[\s\S]*HTTP 404/.test(await page.locator('.chat .error-box').first().textContent()), 'the 404');
    assertNoConsoleErrors(page, [404]);
    await page.context().close();
  });

  test('files: a drag-and-dropped upload shows its progress, is listed, downloads and deletes', async () => {
    const page = await env.open({ hash: '#/files' });
    const content = 'x'.repeat(3 * 1024 * 1024);
    const dataTransfer = await page.evaluateHandle((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'big.txt', { type: 'text/plain' }));
      return dt;
    }, content);
    await page.dispatchEvent('.drop-zone', 'drop', { dataTransfer });
    const row = page.locator('.uploads .upload-row[data-filename="big.txt"]');
    await until(async () => (await row.getAttribute('class')).includes('uploaded'), 'the upload');
    assert.equal(await row.locator('progress').evaluate((p) => p.value === p.max && p.max >= 3 * 1024 * 1024), true);
    const fileId = await row.getAttribute('data-file-id');
    const listed = page.locator(`.files-table tr[data-id="${fileId}"]`);
    await listed.waitFor();
    assert.match(await listed.textContent(), /big\.txt[\s\S]*3\.0 MB[\s\S]*assistants/);
    await screenshot(page, 'files');
    const [download] = await Promise.all([page.waitForEvent('download'), listed.getByRole('button', { name: 'download big.txt' }).click()]);
    assert.equal(download.suggestedFilename(), 'big.txt');
    assert.equal(fs.statSync(await download.path()).size, content.length);
    page.once('dialog', (d) => d.accept());
    await listed.getByRole('button', { name: 'delete big.txt' }).click();
    await listed.waitFor({ state: 'detached' });
    const files = await env.api('GET', 'files');
    assert.equal(files.data.some((f) => f.id === fileId), false);
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('3. a function call: the tool-output form continues the run to an answer', async () => {
    const asst = await assistant({
      name: 'Tools',
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    await env.script(asst.model,
      { tool_calls: [{ name: 'get_weather', arguments: JSON.stringify({ city: 'Oslo' }) }] },
      { text: 'It is sunny in Oslo, 21 degrees.', chunk_delay_ms: 20 });
    const page = await env.open();
    // Per-run overrides reach the run and the model.
    await page.evaluate(() => { location.hash = '#/threads'; });
    await page.getByText('Run options (overrides for the next run)').click();
    await page.getByLabel('Additional instructions', { exact: true }).fill('Answer in Celsius.');
    await page.getByLabel('Max completion tokens', { exact: true }).fill('500');
    await sendInThread(page, asst, 'Weather in Oslo?');
    await waitForRun(page, ['requires_action'], 'requires_action');
    const form = page.locator('.tool-output-form');
    await form.waitFor();
    assert.equal(await form.locator('textarea').count(), 1);
    assert.match(await form.textContent(), /get_weather/);
    assert.match(await form.locator('.arguments').textContent(), /"city": "Oslo"/);
    // The steps panel shows the call waiting for its output.
    assert.match(await page.locator('.steps .function-call').textContent(), /waiting for the output/);
    await form.locator('textarea').fill('sunny, 21 °C');
    await screenshot(page, '3-tool-output-form');
    await form.getByRole('button', { name: 'Submit outputs' }).click();
    await waitForRun(page, ['completed', 'failed'], 'the continued run');
    assert.equal(await runStatus(page), 'completed', env.serverLog());
    await until(async () => /It is sunny in Oslo, 21 degrees\./.test(await page.locator('.messages').textContent()), 'the answer');
    assert.equal(await page.locator('.tool-output-form').count(), 0);
    assert.match(await page.locator('.steps .function-call .output').textContent(), /sunny, 21 °C/);
    // The model got the output.
    const requests = await env.llmRequests(asst.model);
    assert.equal(requests.length, 2);
    const tool = requests[1].messages.find((m) => m.role === 'tool');
    assert.equal(tool.content, 'sunny, 21 °C');
    assert.match(requests[0].messages[0].content, /Answer in Celsius\./);
    const runId = await page.locator('#run-status').getAttribute('data-run-id');
    const threadId = page.url().split('#/threads/')[1];
    const run = await env.api('GET', `threads/${threadId}/runs/${runId}`);
    assert.equal(run.max_completion_tokens, 500);
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('the Cancel button stops a streaming run', async () => {
    const asst = await assistant({ name: 'Slow' });
    await env.script(asst.model, { text: 'a b c d e f g h i j k l m n o p q r s t', chunk_delay_ms: 300 });
    const page = await env.open();
    await sendInThread(page, asst, 'Take your time.');
    await until(async () => ((await page.locator('.message[data-role="assistant"] .message-body').textContent().catch(() => '')) || '').trim().length > 0, 'the first words');
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await waitForRun(page, ['cancelled'], 'the cancelled run');
    assert.equal(await page.getByRole('button', { name: 'Cancel run' }).isDisabled(), true);
    const runId = await page.locator('#run-status').getAttribute('data-run-id');
    const threadId = page.url().split('#/threads/')[1];
    assert.equal((await env.api('GET', `threads/${threadId}/runs/${runId}`)).status, 'cancelled');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('API errors are shown in words with their status, and a failed run shows why', async () => {
    const asst = await assistant({ name: 'Failing' });
    await env.script(asst.model, { error: { status: 400, message: 'This prompt is not allowed.' } });
    const page = await env.open();
    // A run the server refuses: its message, parameter and status.
    await page.evaluate(() => { location.hash = '#/threads'; });
    await page.getByText('Run options (overrides for the next run)').click();
    await page.getByLabel('Max completion tokens', { exact: true }).fill('10');
    await sendInThread(page, asst, 'Hello?');
    await until(async () => /HTTP 400/.test(await page.locator('.chat > .error-box').textContent()), 'the 400');
    const refused = await page.locator('.chat > .error-box').textContent();
    assert.match(refused, /max_completion_tokens/);
    // Without the bad override the run starts, and the model's refusal fails it.
    await page.getByLabel('Max completion tokens', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForRun(page, ['failed'], 'the failed run');
    assert.match(await page.locator('.run-error').textContent(), /invalid_prompt|server_error/);
    assert.equal(await page.locator('.chat > .error-box').isVisible(), false);
    await screenshot(page, 'failed-run');
    assertNoConsoleErrors(page, [400]);
    await page.context().close();
  });

  test('4. a file uploaded into a new vector store is cited with a link to it, and the steps show the search', async () => {
    const page = await env.open({ hash: '#/vector-stores' });
    const storeName = `Countries ${randomUUID().slice(0, 6)}`;
    await page.getByLabel('Name', { exact: true }).fill(storeName);
    await page.getByRole('button', { name: 'Create vector store' }).click();
    await until(async () => /#\/vector-stores\/vs_/.test(page.url()), 'the store page');
    const storeId = page.url().split('#/vector-stores/')[1];
    await page.getByLabel('Upload files into this store').setInputFiles({
      name: 'norway.txt', mimeType: 'text/plain', buffer: Buffer.from(NORWAY),
    });
    await until(async () => {
      const counts = await page.locator('.counts').getAttribute('data-counts').catch(() => null);
      return counts && JSON.parse(counts).completed === 1;
    }, 'the file ingested', 30_000);
    assert.equal(await page.locator('.uploads progress').evaluate((p) => p.value === p.max), true);
    assert.match(await page.locator('.store-files').textContent(), /norway\.txt/);
    // The search box shows ranked chunks.
    await page.getByLabel('Query', { exact: true }).fill('capital of Norway');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('.search-results .search-result').first().waitFor();
    assert.match(await page.locator('.search-results').textContent(), /norway\.txt[\s\S]*score 0\.\d{3}[\s\S]*Oslofjord/);
    await screenshot(page, '4-vector-store');

    const files = await env.api('GET', `vector_stores/${storeId}/files`);
    const fileId = files.data[0].id;
    const asst = await assistant({
      name: 'Librarian',
      tools: [{ type: 'file_search' }],
      tool_resources: { file_search: { vector_store_ids: [storeId] } },
    });
    await env.script(asst.model,
      { tool_calls: [{ name: 'file_search', arguments: JSON.stringify({ queries: ['capital of Norway'] }) }] },
      { text: 'The capital is Oslo【0:0†norway.txt】.' });
    await sendInThread(page, asst, 'What is the capital of Norway?');
    await waitForRun(page, ['completed', 'failed'], 'the run');
    assert.equal(await runStatus(page), 'completed', env.serverLog());
    const answer = page.locator('.message[data-role="assistant"]').last();
    await until(async () => (await answer.locator('sup.cite a').count()) === 1, 'the citation');
    assert.equal((await answer.locator('.markdown').textContent()).trim(), 'The capital is Oslo[1].');
    const footnote = answer.locator('.footnotes a.file-link');
    assert.equal(await footnote.getAttribute('data-file-id'), fileId);
    await until(async () => (await footnote.textContent()) === 'norway.txt', 'the file name');
    // The footnote downloads the file (fetched with the key).
    const [download] = await Promise.all([page.waitForEvent('download'), footnote.click()]);
    assert.equal(download.suggestedFilename(), 'norway.txt');
    assert.equal(fs.readFileSync(await download.path(), 'utf8'), NORWAY);
    // The steps panel: the file_search call with its result, score and chunk text.
    const result = page.locator('.steps .file-search-call .search-result').first();
    await result.waitFor();
    assert.equal(await result.getAttribute('data-file-id'), fileId);
    assert.match(await result.textContent(), /norway\.txt\s+score 0\.\d{3}[\s\S]*capital is Oslo/);
    await screenshot(page, '4-thread-file-search');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('5. a code_interpreter figure is shown as an image', async () => {
    // The tool needs the local sandbox (scripts/code-interpreter-deps.sh): the server's log
    // must say it is on, or this test fails saying why (it never skips).
    const line = await until(() => {
      const log = env.serverLog();
      return /code_interpreter enabled[^\n]*/.exec(log)?.[0] || /code_interpreter is unavailable[^\n]*/.exec(log)?.[0];
    }, 'the code_interpreter start-up line in the server log', 60_000);
    assert.match(line, /code_interpreter enabled/, `the sandbox is off: ${line}`);
    const asst = await assistant({ name: 'Analyst', tools: [{ type: 'code_interpreter' }] });
    await env.script(asst.model,
      { tool_calls: [{ name: 'python', arguments: JSON.stringify({ code: PLOT }) }] },
      { text: 'Here is the figure and [the data](sandbox:/mnt/data/numbers.csv).' });
    const page = await env.open();
    await sendInThread(page, asst, 'Draw a line.');
    await waitForRun(page, ['completed', 'failed'], 'the run');
    assert.equal(await runStatus(page), 'completed', env.serverLog());
    const image = page.locator('.message[data-role="assistant"] img.file-image').first();
    await image.waitFor();
    await until(() => image.evaluate((img) => img.complete && img.naturalWidth > 100), 'the figure loaded');
    assert.match(await image.getAttribute('src'), /^blob:/);
    // The steps panel shows the code, its logs and the figure.
    const call = page.locator('.steps .code-call').first();
    assert.match(await call.locator('.input').textContent(), /plt\.plot/);
    assert.match(await call.locator('.logs').textContent(), /plotted/);
    await until(() => call.locator('img.file-image').evaluate((img) => img.complete && img.naturalWidth > 100), 'the step figure');
    // The file_path annotation: the link downloads the file the code wrote.
    const link = page.locator('.message[data-role="assistant"] .markdown a.file-link');
    assert.equal(await link.textContent(), 'the data');
    assert.match(await link.getAttribute('data-file-id'), /^file-/);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'numbers.csv');
    assert.equal(fs.readFileSync(await download.path(), 'utf8'), 'x,y\n1,2\n2,4\n3,1\n');
    await screenshot(page, '5-code-interpreter');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('6. HTML and script in messages are shown as text and never run', async () => {
    const hostile = '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> '
      + '[click](javascript:window.__pwned=3) **bold**';
    const asst = await assistant({ name: 'Echo' });
    // The model answers with the same text (rendered as Markdown, where it must be inert too).
    await env.script(asst.model, { text: hostile });
    const page = await env.open();
    await sendInThread(page, asst, hostile);
    await waitForRun(page, ['completed', 'failed'], 'the run');
    assert.equal(await runStatus(page), 'completed', env.serverLog());
    const user = page.locator('.message[data-role="user"]').last();
    const answer = page.locator('.message[data-role="assistant"]').last();
    assert.equal((await user.locator('.message-body').textContent()).trim(), hostile);
    const shown = await answer.locator('.message-body').textContent();
    assert.match(shown, /<img src=x onerror="window.__pwned = 1">/);
    assert.match(shown, /<script>window.__pwned = 2<\/script>/);
    assert.equal(await answer.locator('.message-body strong').textContent(), 'bold');
    // Nothing of it became an element, a handler or a script link.
    assert.equal(await page.locator('.messages img, .messages script').count(), 0);
    assert.equal(await page.locator('.messages [onerror], .messages a[href^="javascript"]').count(), 0);
    await answer.locator('a', { hasText: 'click' }).click();
    await delay(300);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await screenshot(page, '6-hostile-text');
    assertNoConsoleErrors(page);
    await page.context().close();
  });

  test('7. a wrong key shows the 401 message', async () => {
    const page = await env.open({ key: 'sk-not-the-right-key' });
    const banner = page.locator('#key-error');
    await banner.waitFor({ state: 'visible' });
    const text = await banner.textContent();
    assert.match(text, /The API key was refused \(401 Unauthorized\)/);
    assert.match(text, /Incorrect API key provided/);
    // The section below says so too, and the page still works: the right key fixes it.
    await until(async () => /401/.test(await page.locator('main .error-box').first().textContent()), 'the view error');
    await screenshot(page, '7-wrong-key');
    await page.fill('#api-key', API_KEY);
    await page.click('#key-save');
    await until(async () => /Key accepted/.test(await page.locator('#key-status').textContent()), 'the key accepted');
    assert.equal(await banner.isVisible(), false);
    // The key is in this tab's session storage only, and in no URL.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('playground.apiKey')), API_KEY);
    assert.equal(await page.evaluate(() => JSON.stringify(localStorage).includes('sk-')), false);
    assert.ok(!page.url().includes(API_KEY));
    // Chromium logs each refused request ("Failed to load resource: … 401"): those are the
    // answers this test asked for; nothing else may be logged.
    assertNoConsoleErrors(page, [401]);
    await page.context().close();
  });

  test('8. every section renders without errors, at a narrow width too, and the tabs are keyboard reachable', async () => {
    const page = await env.open({ width: 400, height: 900 });
    for (const [hash, heading] of [['#/assistants', 'Assistants'], ['#/threads', 'Threads'], ['#/files', 'Files'], ['#/vector-stores', 'Vector stores']]) {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await delay(300);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${hash} is wider than the window by ${overflow}px`);
      await screenshot(page, `8-narrow-${hash.slice(2)}`);
    }
    // Keyboard: from the top of the page, Tab reaches the section tabs.
    await page.locator('.brand').click();
    const focused = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => document.activeElement?.textContent?.trim() || document.activeElement?.id));
    }
    for (const tab of ['Assistants', 'Threads', 'Files', 'Vector stores']) {
      assert.ok(focused.includes(tab), `Tab never reached ${tab}: ${focused}`);
    }
    await page.keyboard.press('Enter');
    assertNoConsoleErrors(page);
    await page.context().close();
  });
});
