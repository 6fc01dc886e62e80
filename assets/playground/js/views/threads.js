// Threads: start one or open one by id (the recent ones are remembered in this browser, ids
// only), read its messages, send a message and run it streamed, with the text appearing
// as it arrives, the run's status, usage and a Cancel button, and the steps panel beside the
// chat. On `requires_action` a form asks for one output per tool call; submitting it streams
// the continuation. Per-run overrides: instructions, additional instructions, model,
// tool_choice, truncation, max tokens.

import * as api from '../api.js';
import { h, replace, field, uid, badge, formatTime, pretty } from '../dom.js';
import { errorBox, button, busy, dropZone, uploadWithProgress, emptyNote } from '../ui.js';
import { recentThreads, rememberThread, forgetThread } from '../storage.js';
import { applyMessageDelta, applyStepDelta } from '../accumulate.js';
import { renderMessage, updateMessage } from './messages.js';
import { renderStep, updateStep } from './steps.js';
import { LAST_ASSISTANT } from './assistants.js';

const ACTIVE = new Set(['queued', 'in_progress', 'requires_action', 'cancelling']);
const POLL_MS = 1000;

export function threadsView(root, threadId, ctx) {
  const view = new ThreadView(root, threadId, ctx);
  return () => view.close();
}

class ThreadView {
  constructor(root, threadId, ctx) {
    this.ctx = ctx;
    this.threadId = threadId;
    this.assistants = [];
    this.messages = new Map();
    this.steps = new Map();
    this.run = null;
    this.controller = null;
    this.pollTimer = null;
    this.closed = false;
    this.pendingRender = new Set();
    this.build(root);
    this.loadAssistants();
    this.showRecent();
    if (threadId) this.open(threadId);
    else this.showEmpty();
  }

  close() {
    this.closed = true;
    this.controller?.abort();
    clearTimeout(this.pollTimer);
  }

  build(root) {
    this.errors = errorBox();
    this.recentList = h('ul', { class: 'item-list recent-threads' });
    this.openInput = h('input', { type: 'text', placeholder: 'thread_…', pattern: 'thread_[A-Za-z0-9]+', spellcheck: false });
    const openButton = h('button', { type: 'submit' }, 'Open');
    const openForm = h('form', { class: 'inline-form', 'aria-label': 'Open a thread by id' }, field('Thread id', this.openInput), openButton);
    openForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const id = this.openInput.value.trim();
      if (id) this.ctx.navigate(`#/threads/${id}`);
    });
    const sideErrors = errorBox();
    const newButton = button('New thread', (e) => busy(e.currentTarget, sideErrors, async () => {
      const thread = await api.post('threads', {});
      rememberThread(thread.id);
      this.ctx.navigate(`#/threads/${thread.id}`);
    }));

    // The chat column.
    this.title = h('div', { class: 'thread-title' });
    this.assistantSelect = h('select', { required: true });
    this.assistantSelect.addEventListener('change', () => {
      localStorage.setItem(LAST_ASSISTANT, this.assistantSelect.value);
      this.fillToolChoice();
    });
    // Not a live region: a streamed answer re-renders many times a second.
    this.messageList = h('div', { class: 'messages', role: 'region', 'aria-label': 'Messages' });
    this.actionArea = h('div', { class: 'action-area' });
    this.composerText = h('textarea', { rows: 3, placeholder: 'Write a message… (Ctrl+Enter sends and runs)' });
    this.composerText.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.sendButton.click();
      }
    });
    this.attached = [];
    this.attachList = h('ul', { class: 'uploads attachments-pending', 'aria-label': 'Files to attach' });
    const attachZone = dropZone({
      label: 'Attach files',
      onFiles: async (files) => {
        const uploaded = await uploadWithProgress(files, this.attachList, 'assistants');
        for (const f of uploaded) this.addAttachment(f);
      },
    });
    attachZone.classList.add('compact');
    this.sendButton = button('Send and run', (e) => this.guard(e.currentTarget, () => this.send(true)), { class: 'primary' });
    const addOnly = button('Add message', (e) => this.guard(e.currentTarget, () => this.send(false)), { class: 'secondary' });
    const runOnly = button('Run', (e) => this.guard(e.currentTarget, () => this.startRun()), { class: 'secondary' });
    this.options = this.buildOptions();
    const composer = h('div', { class: 'composer' },
      field('Message', this.composerText),
      attachZone, this.attachList,
      this.options,
      h('div', { class: 'toolbar' }, this.sendButton, addOnly, runOnly));

    // The run panel.
    this.runStatus = h('span', { id: 'run-status', class: 'run-status', role: 'status', 'aria-live': 'polite' });
    this.runUsage = h('div', { class: 'run-usage' });
    this.runError = h('div', { class: 'run-error' });
    this.cancelButton = button('Cancel run', (e) => busy(e.currentTarget, this.errors, () => this.cancel()), { disabled: true, class: 'danger' });
    this.runSelect = h('select', { 'aria-label': 'run' });
    this.runSelect.addEventListener('change', () => this.showRun(this.runSelect.value));
    this.stepList = h('div', { class: 'steps', 'aria-label': 'Run steps' });

    root.append(h('div', { class: 'three-columns' },
      h('section', { class: 'panel sidebar' },
        h('h1', {}, 'Threads'),
        newButton, sideErrors, openForm,
        h('h2', {}, 'Recent'), this.recentList),
      h('section', { class: 'panel chat', 'aria-label': 'Chat' },
        this.title,
        field('Assistant', this.assistantSelect),
        this.errors,
        this.messageList,
        this.actionArea,
        composer),
      h('aside', { class: 'panel steps-panel', 'aria-label': 'Run' },
        h('h2', {}, 'Run'),
        h('div', { class: 'run-head' }, this.runStatus, this.cancelButton),
        this.runUsage, this.runError,
        field('Run', this.runSelect),
        h('h3', {}, 'Steps'),
        this.stepList)));
  }

  buildOptions() {
    this.optInstructions = h('textarea', { rows: 3, placeholder: "the assistant's" });
    this.optAdditional = h('textarea', { rows: 2 });
    this.optModel = h('input', { type: 'text', placeholder: "the assistant's" });
    this.optToolChoice = h('select', {});
    this.optTruncation = h('select', {}, [['', 'default (auto)'], ['auto', 'auto'], ['last_messages', 'last messages']]
      .map(([v, l]) => h('option', { value: v }, l)));
    this.optLastMessages = h('input', { type: 'number', min: 1, value: 10 });
    this.optMaxPrompt = h('input', { type: 'number', min: 256, placeholder: 'no limit' });
    this.optMaxCompletion = h('input', { type: 'number', min: 256, placeholder: 'no limit' });
    this.optTemperature = h('input', { type: 'number', min: 0, max: 2, step: 0.1, placeholder: "the assistant's" });
    const lastField = field('Last messages', this.optLastMessages);
    const showLast = () => { lastField.hidden = this.optTruncation.value !== 'last_messages'; };
    this.optTruncation.addEventListener('change', showLast);
    showLast();
    this.fillToolChoice();
    return h('details', { class: 'run-options' },
      h('summary', {}, 'Run options (overrides for the next run)'),
      field('Instructions (replace the assistant\'s)', this.optInstructions),
      field('Additional instructions', this.optAdditional),
      h('div', { class: 'grid-3' },
        field('Model', this.optModel),
        field('Tool choice', this.optToolChoice),
        field('Temperature', this.optTemperature)),
      h('div', { class: 'grid-3' },
        field('Truncation', this.optTruncation), lastField,
        field('Max prompt tokens', this.optMaxPrompt)),
      h('div', { class: 'grid-3' }, field('Max completion tokens', this.optMaxCompletion)));
  }

  fillToolChoice() {
    const previous = this.optToolChoice.value;
    const assistant = this.assistants.find((a) => a.id === this.assistantSelect?.value);
    const choices = [['', 'default (auto)'], ['auto', 'auto'], ['none', 'none'], ['required', 'required']];
    for (const t of assistant?.tools || []) {
      if (t.type === 'function') choices.push([`function:${t.function.name}`, `function ${t.function.name}`]);
      else choices.push([t.type, t.type]);
    }
    replace(this.optToolChoice, choices.map(([v, l]) => h('option', { value: v, selected: v === previous }, l)));
  }

  runOverrides() {
    const body = {};
    if (this.optInstructions.value.trim()) body.instructions = this.optInstructions.value;
    if (this.optAdditional.value.trim()) body.additional_instructions = this.optAdditional.value;
    if (this.optModel.value.trim()) body.model = this.optModel.value.trim();
    const tc = this.optToolChoice.value;
    if (tc.startsWith('function:')) body.tool_choice = { type: 'function', function: { name: tc.slice('function:'.length) } };
    else if (tc === 'file_search' || tc === 'code_interpreter') body.tool_choice = { type: tc };
    else if (tc) body.tool_choice = tc;
    if (this.optTruncation.value === 'auto') body.truncation_strategy = { type: 'auto' };
    if (this.optTruncation.value === 'last_messages') {
      body.truncation_strategy = { type: 'last_messages', last_messages: Number(this.optLastMessages.value) || 1 };
    }
    if (this.optMaxPrompt.value) body.max_prompt_tokens = Number(this.optMaxPrompt.value);
    if (this.optMaxCompletion.value) body.max_completion_tokens = Number(this.optMaxCompletion.value);
    if (this.optTemperature.value !== '') body.temperature = Number(this.optTemperature.value);
    return body;
  }

  addAttachment(file) {
    const search = h('input', { type: 'checkbox', checked: true });
    const code = h('input', { type: 'checkbox' });
    const entry = { file, search, code };
    const item = h('li', { class: 'pending-attachment', 'data-file-id': file.id },
      h('span', {}, file.filename), ' ',
      h('span', { class: 'field checkbox' }, search, h('label', { for: (search.id = uid()) }, 'file_search')),
      h('span', { class: 'field checkbox' }, code, h('label', { for: (code.id = uid()) }, 'code_interpreter')),
      button('Remove', () => {
        this.attached.splice(this.attached.indexOf(entry), 1);
        item.remove();
      }, { class: 'small' }));
    entry.item = item;
    this.attached.push(entry);
    // The upload rows are replaced by the chosen attachments.
    for (const row of this.attachList.querySelectorAll('.upload-row.uploaded')) row.remove();
    this.attachList.append(item);
  }

  async guard(buttonEl, action) {
    if (this.controller) {
      this.errors.show(new Error('A run is streaming: wait for it or cancel it.'));
      return;
    }
    await busy(buttonEl, this.errors, action);
  }

  async loadAssistants() {
    try {
      const { data } = await api.listAll('assistants', { order: 'desc' }, 500);
      this.assistants = data;
      const wanted = localStorage.getItem(LAST_ASSISTANT);
      replace(this.assistantSelect,
        data.length === 0 ? h('option', { value: '' }, 'no assistants: create one first') : null,
        data.map((a) => h('option', { value: a.id, selected: a.id === wanted }, `${a.name || '(unnamed)'} · ${a.model} · ${a.id}`)));
      this.fillToolChoice();
    } catch (e) {
      this.errors.show(e);
    }
  }

  showRecent() {
    const ids = recentThreads();
    replace(this.recentList, ids.length === 0
      ? h('li', { class: 'empty' }, 'None yet.')
      : ids.map((id) => h('li', {}, h('a', { href: `#/threads/${id}`, 'aria-current': id === this.threadId ? 'true' : null }, id))));
  }

  showEmpty() {
    replace(this.title, h('h2', {}, 'New conversation'),
      h('p', { class: 'hint' }, 'Your first message starts a thread.'));
    replace(this.messageList, emptyNote('No messages yet.'));
    this.setRun(null);
  }

  async open(threadId) {
    try {
      const thread = await api.get(`threads/${threadId}`);
      rememberThread(thread.id);
      this.showRecent();
      const deleteButton = button('Delete thread', (e) => {
        if (!window.confirm(`Delete ${thread.id} with its messages and runs?`)) return;
        busy(e.currentTarget, this.errors, async () => {
          await api.del(`threads/${thread.id}`);
          forgetThread(thread.id);
          this.ctx.navigate('#/threads');
        });
      }, { class: 'danger small' });
      replace(this.title, h('h2', {}, 'Thread ', h('code', { class: 'thread-id' }, thread.id)),
        h('p', { class: 'hint' }, `created ${formatTime(thread.created_at)} `, deleteButton));
      await this.loadMessages();
      await this.loadRuns();
    } catch (e) {
      if (e.status === 404) {
        forgetThread(threadId);
        this.showRecent();
      }
      this.errors.show(e);
      replace(this.messageList);
    }
  }

  async loadMessages() {
    const { data, hasMore } = await api.listAll(`threads/${this.threadId}/messages`, { order: 'asc' }, 1000);
    this.messages.clear();
    replace(this.messageList, hasMore ? h('p', { class: 'hint' }, 'Showing the first 1,000 messages.') : null);
    if (data.length === 0) this.messageList.append(emptyNote('No messages yet.'));
    for (const m of data) this.upsertMessage(m);
  }

  async loadRuns(selected) {
    const page = await api.get(`threads/${this.threadId}/runs`, { limit: 20, order: 'desc' });
    replace(this.runSelect, page.data.length === 0 ? h('option', { value: '' }, 'no runs yet') : null,
      page.data.map((r) => h('option', { value: r.id, selected: r.id === selected }, `${r.id} · ${r.status}`)));
    const run = page.data.find((r) => r.id === selected) || page.data[0];
    if (run) await this.showRun(run.id, run);
    else this.setRun(null);
  }

  async showRun(runId, known) {
    if (!runId) return;
    try {
      const run = known || await api.get(`threads/${this.threadId}/runs/${runId}`);
      this.setRun(run);
      await this.loadSteps(runId);
      if (run.status === 'queued' || run.status === 'in_progress' || run.status === 'cancelling') this.poll(run.id);
      if (run.status === 'requires_action' && runId === this.runSelect.options[0]?.value) this.showToolForm(run);
    } catch (e) {
      this.errors.show(e);
    }
  }

  async loadSteps(runId) {
    const { data } = await api.listAll(`threads/${this.threadId}/runs/${runId}/steps`,
      { order: 'asc', 'include[]': api.INCLUDE_SEARCH_CONTENT }, 500);
    this.steps.clear();
    replace(this.stepList);
    for (const s of data) this.upsertStep(s);
    if (data.length === 0) this.stepList.append(emptyNote('No steps yet.'));
  }

  /** Follows a run this page is not streaming (started elsewhere, or before a reload). */
  poll(runId) {
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(async () => {
      if (this.closed || this.controller) return;
      try {
        const run = await api.get(`threads/${this.threadId}/runs/${runId}`);
        if (this.closed) return;
        if (run.status === 'queued' || run.status === 'in_progress' || run.status === 'cancelling') {
          this.setRun(run);
          await this.loadSteps(runId);
          this.poll(runId);
        } else {
          await this.loadMessages();
          await this.loadRuns(runId);
        }
      } catch (e) {
        this.errors.show(e);
      }
    }, POLL_MS);
  }

  async ensureThread() {
    if (this.threadId) return this.threadId;
    const thread = await api.post('threads', {});
    this.threadId = thread.id;
    rememberThread(thread.id);
    // Not a navigation: the view stays, with its run about to stream.
    history.replaceState(null, '', `#/threads/${thread.id}`);
    replace(this.title, h('h2', {}, 'Thread ', h('code', { class: 'thread-id' }, thread.id)));
    this.showRecent();
    return thread.id;
  }

  async send(andRun) {
    const text = this.composerText.value;
    if (!text.trim() && this.attached.length === 0) {
      this.composerText.focus();
      throw new Error('Write a message first.');
    }
    if (andRun && !this.assistantSelect.value) throw new Error('Choose an assistant to run.');
    const threadId = await this.ensureThread();
    const body = { role: 'user', content: text.trim() ? text : '(files attached)' };
    const attachments = this.attached.map((a) => ({
      file_id: a.file.id,
      tools: [
        ...(a.search.checked ? [{ type: 'file_search' }] : []),
        ...(a.code.checked ? [{ type: 'code_interpreter' }] : []),
      ],
    })).filter((a) => a.tools.length > 0);
    if (attachments.length) body.attachments = attachments;
    const message = await api.post(`threads/${threadId}/messages`, body);
    this.composerText.value = '';
    for (const a of this.attached) a.item.remove();
    this.attached = [];
    this.messageList.querySelector('.empty')?.remove();
    this.upsertMessage(message);
    if (andRun) await this.startRun();
  }

  async startRun() {
    if (!this.assistantSelect.value) throw new Error('Choose an assistant to run.');
    const threadId = await this.ensureThread();
    this.steps.clear();
    replace(this.stepList);
    replace(this.actionArea);
    await this.consume(api.stream(`threads/${threadId}/runs`,
      { assistant_id: this.assistantSelect.value, ...this.runOverrides() },
      { 'include[]': api.INCLUDE_SEARCH_CONTENT }, this.newController()));
  }

  newController() {
    clearTimeout(this.pollTimer);
    this.controller = new AbortController();
    return this.controller.signal;
  }

  /** Applies a run's events to the page as they arrive. */
  async consume(events) {
    try {
      for await (const { event, data } of events) {
        if (this.closed) return;
        if (event.startsWith('thread.run.step.')) {
          if (event === 'thread.run.step.delta') {
            const entry = this.steps.get(data.id);
            if (entry) {
              applyStepDelta(entry.data, data);
              this.scheduleRender(entry);
            }
          } else {
            this.upsertStep(data);
          }
        } else if (event.startsWith('thread.run.')) {
          this.setRun(data);
        } else if (event.startsWith('thread.message.')) {
          if (event === 'thread.message.delta') {
            const entry = this.messages.get(data.id);
            if (entry) {
              applyMessageDelta(entry.data, data);
              this.scheduleRender(entry);
            }
          } else {
            this.upsertMessage(data);
          }
        }
      }
    } finally {
      this.controller = null;
      this.flushRenders();
    }
    if (this.run) {
      this.addRunOption(this.run);
      if (this.run.status === 'requires_action') this.showToolForm(this.run);
    }
  }

  /** Renders a streamed message or step at most once per frame, however many deltas came. */
  scheduleRender(entry) {
    const first = this.pendingRender.size === 0;
    this.pendingRender.add(entry);
    if (first) requestAnimationFrame(() => this.flushRenders());
  }

  flushRenders() {
    for (const entry of this.pendingRender) entry.update(entry.el, entry.data);
    this.pendingRender.clear();
  }

  upsertMessage(message) {
    const entry = this.messages.get(message.id);
    if (entry) {
      entry.data = message;
      this.pendingRender.delete(entry);
      updateMessage(entry.el, message);
      return;
    }
    const el = renderMessage(message);
    this.messages.set(message.id, { data: message, el, update: updateMessage });
    this.messageList.querySelector('.empty')?.remove();
    this.messageList.append(el);
    el.scrollIntoView({ block: 'nearest' });
  }

  upsertStep(step) {
    const entry = this.steps.get(step.id);
    if (entry) {
      entry.data = step;
      this.pendingRender.delete(entry);
      updateStep(entry.el, step);
      return;
    }
    const el = renderStep(step);
    this.steps.set(step.id, { data: step, el, update: updateStep });
    this.stepList.querySelector('.empty')?.remove();
    this.stepList.append(el);
  }

  addRunOption(run) {
    let option = [...this.runSelect.options].find((o) => o.value === run.id);
    if (!option) {
      this.runSelect.querySelector('option[value=""]')?.remove();
      option = h('option', { value: run.id });
      this.runSelect.prepend(option);
    }
    option.textContent = `${run.id} · ${run.status}`;
    this.runSelect.value = run.id;
  }

  setRun(run) {
    this.run = run;
    if (!run) {
      replace(this.runStatus, 'No run yet.');
      this.runStatus.dataset.status = '';
      replace(this.runUsage);
      replace(this.runError);
      this.cancelButton.disabled = true;
      return;
    }
    replace(this.runStatus, badge(run.status), ' ', h('code', {}, run.id));
    this.runStatus.dataset.status = run.status;
    this.runStatus.dataset.runId = run.id;
    this.cancelButton.disabled = !ACTIVE.has(run.status) || run.status === 'cancelling';
    const u = run.usage;
    replace(this.runUsage, u
      ? h('p', { class: 'usage', 'data-total': u.total_tokens },
        `Tokens: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens}`)
      : h('p', { class: 'hint' }, ACTIVE.has(run.status) ? 'Usage appears when the run ends.' : 'No usage.'),
    h('p', { class: 'hint' }, `model ${run.model}`));
    replace(this.runError,
      run.last_error ? h('p', { class: 'inline-error', role: 'alert' }, `${run.last_error.code}: ${run.last_error.message}`) : null,
      run.incomplete_details ? h('p', { class: 'hint' }, `Incomplete: ${run.incomplete_details.reason}`) : null);
    if (run.status !== 'requires_action') replace(this.actionArea);
  }

  async cancel() {
    if (!this.run) return;
    const run = await api.post(`threads/${this.threadId}/runs/${this.run.id}/cancel`);
    // A streaming run reports its own end; one that waited for tool outputs ends here.
    if (!this.controller) {
      this.setRun(run);
      this.addRunOption(run);
      if (run.status === 'cancelling') this.poll(run.id);
    }
  }

  /** The form for a run waiting for tool outputs: one field per call. */
  showToolForm(run) {
    const calls = run.required_action?.submit_tool_outputs?.tool_calls || [];
    const errors = errorBox();
    const fields = calls.map((call) => {
      const area = h('textarea', { rows: 2, 'data-call-id': call.id, required: true });
      return h('div', { class: 'tool-output-field' },
        h('label', { for: (area.id = uid('out')) }, 'Output of ', h('code', {}, call.function.name), ` (${call.id})`),
        h('pre', { class: 'code arguments' }, pretty(call.function.arguments)),
        area);
    });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Submit outputs');
    const form = h('form', { class: 'tool-output-form', 'aria-label': 'Tool outputs' },
      h('h3', {}, 'The assistant called tools: give their outputs'),
      fields, errors, h('div', { class: 'toolbar' }, submit));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(submit, errors, async () => {
        const outputs = calls.map((call) => ({
          tool_call_id: call.id,
          output: form.querySelector(`textarea[data-call-id="${call.id}"]`).value,
        }));
        replace(this.actionArea);
        await this.consume(api.stream(`threads/${this.threadId}/runs/${run.id}/submit_tool_outputs`,
          { tool_outputs: outputs }, undefined, this.newController())).catch((e) => {
          this.errors.show(e);
        });
      });
    });
    replace(this.actionArea, form);
    form.querySelector('textarea')?.focus();
  }
}
