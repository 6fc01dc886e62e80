// The steps of a run, beside the chat: tool calls with their arguments and outputs,
// `file_search` results with scores and chunk text, `code_interpreter` code and logs with
// its figures, and the message each message_creation step wrote.

import { h, replace, pretty, badge } from '../dom.js';
import { plainText } from '../markdown.js';
import { fileImage } from './messages.js';

function usage(u) {
  if (!u) return null;
  return h('small', { class: 'usage' }, `tokens: ${u.prompt_tokens} in, ${u.completion_tokens} out, ${u.total_tokens} total`);
}

function functionCall(call) {
  const fn = call.function || {};
  return h('div', { class: 'tool-call function-call', 'data-call-id': call.id || '' },
    h('h4', {}, 'function ', h('code', {}, fn.name || '…')),
    h('div', { class: 'label' }, 'Arguments'),
    h('pre', { class: 'code arguments' }, pretty(fn.arguments || '')),
    h('div', { class: 'label' }, 'Output'),
    fn.output === null || fn.output === undefined
      ? h('p', { class: 'hint' }, 'waiting for the output')
      : h('pre', { class: 'code output' }, fn.output));
}

function fileSearchCall(call) {
  const fs = call.file_search || {};
  const results = fs.results || [];
  return h('div', { class: 'tool-call file-search-call', 'data-call-id': call.id || '' },
    h('h4', {}, 'file_search'),
    fs.ranking_options ? h('small', { class: 'hint' },
      `ranker ${fs.ranking_options.ranker}, score threshold ${fs.ranking_options.score_threshold}`) : null,
    results.length === 0
      ? h('p', { class: 'hint' }, call.file_search && call.file_search.results ? 'no results' : 'searching…')
      : h('ol', { class: 'ranked' }, results.map((r) => h('li', { class: 'search-result', 'data-file-id': r.file_id },
        h('div', { class: 'result-head' },
          h('strong', {}, r.file_name || r.file_id), ' ',
          h('span', { class: 'score' }, `score ${Number(r.score).toFixed(3)}`)),
        (r.content || []).map((c) => h('blockquote', { class: 'chunk' }, c.text))))));
}

function codeInterpreterCall(call) {
  const ci = call.code_interpreter || {};
  return h('div', { class: 'tool-call code-call', 'data-call-id': call.id || '' },
    h('h4', {}, 'code_interpreter'),
    h('div', { class: 'label' }, 'Input'),
    h('pre', { class: 'code input' }, ci.input || ''),
    (ci.outputs || []).map((o) => {
      if (o.type === 'logs') return [h('div', { class: 'label' }, 'Logs'), h('pre', { class: 'code logs' }, o.logs || '')];
      if (o.type === 'image' && o.image?.file_id) return fileImage(o.image.file_id, 'figure from code_interpreter');
      return null;
    }));
}

function toolCall(call) {
  switch (call && call.type) {
    case 'function': return functionCall(call);
    case 'file_search': return fileSearchCall(call);
    case 'code_interpreter': return codeInterpreterCall(call);
    default: return h('pre', { class: 'code' }, JSON.stringify(call, null, 2));
  }
}

export function renderStep(step) {
  const el = h('article', { class: 'step', 'data-id': step.id });
  updateStep(el, step);
  return el;
}

export function updateStep(el, step) {
  const details = step.step_details || {};
  let body;
  if (details.type === 'message_creation') {
    body = h('p', {}, 'Wrote message ', h('code', {}, details.message_creation?.message_id || ''));
  } else if (details.type === 'tool_calls') {
    const calls = (details.tool_calls || []).filter(Boolean);
    body = calls.length ? calls.map(toolCall) : h('p', { class: 'hint' }, 'calling tools…');
  } else {
    body = null;
  }
  replace(el,
    h('header', { class: 'step-head' },
      h('strong', {}, details.type === 'tool_calls' ? 'Tool calls' : 'Message'), ' ',
      badge(step.status), ' ', usage(step.usage)),
    body,
    step.last_error ? plainText(`${step.last_error.code}: ${step.last_error.message}`) : null);
  el.dataset.status = step.status;
  el.dataset.type = details.type || '';
}
