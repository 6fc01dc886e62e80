// Assistants: the list, and the editor for creating, changing and deleting one: name,
// description, model, instructions, temperature, top_p, reasoning effort, response format
// (text, json_object, json_schema with a schema editor), metadata, and the tools: functions
// (a JSON-schema editor each, validated), file_search (attach or create a vector store and
// upload files into it), code_interpreter (attach files, or upload new ones).

import * as api from '../api.js';
import { h, append, replace, field, uid, formatTime } from '../dom.js';
import {
  errorBox, button, jsonEditor, metadataEditor, dropZone, uploadWithProgress, busy, emptyNote,
} from '../ui.js';
import { countsText, uploadIntoStore } from './vector-stores.js';

export const LAST_ASSISTANT = 'playground.assistant';
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-5', 'gpt-5-mini', 'o3-mini'];
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FUNCTION_TEMPLATE = {
  name: 'get_weather',
  description: 'Get the current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city, e.g. Oslo' } },
    required: ['city'],
  },
};

/** Why a function definition is not acceptable, or null. */
export function checkFunction(value) {
  const fn = value && value.type === 'function' && value.function ? value.function : value;
  if (!fn || typeof fn !== 'object' || Array.isArray(fn)) return 'A function definition is a JSON object.';
  if (typeof fn.name !== 'string' || !FUNCTION_NAME.test(fn.name)) {
    return '"name" is required: 1 to 64 letters, digits, _ or -.';
  }
  if (fn.description !== undefined && typeof fn.description !== 'string') return '"description" must be a string.';
  if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== 'boolean') return '"strict" must be true or false.';
  if (fn.parameters !== undefined) {
    const p = fn.parameters;
    if (!p || typeof p !== 'object' || Array.isArray(p)) return '"parameters" must be a JSON Schema object.';
    if (p.type !== undefined && p.type !== 'object') return '"parameters.type" must be "object".';
    if (p.properties !== undefined && (typeof p.properties !== 'object' || Array.isArray(p.properties))) {
      return '"parameters.properties" must be an object.';
    }
    if (p.required !== undefined && !(Array.isArray(p.required) && p.required.every((r) => typeof r === 'string'))) {
      return '"parameters.required" must be a list of property names.';
    }
    for (const name of p.required || []) {
      if (p.properties && !(name in p.properties)) return `"parameters.required" names "${name}", which is not a property.`;
    }
  }
  const extra = Object.keys(fn).filter((k) => !['name', 'description', 'parameters', 'strict'].includes(k));
  if (extra.length) return `Unknown field ${extra.map((k) => `"${k}"`).join(', ')}.`;
  return null;
}

function checkSchema(value) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return 'The schema must be a JSON object.';
  return null;
}

export function assistantsView(root, param, ctx) {
  const listArea = h('nav', { class: 'list-area', 'aria-label': 'Assistants' });
  const editorArea = h('div', { class: 'editor-area' });
  const listErrors = errorBox();
  root.append(h('div', { class: 'two-columns' },
    h('section', { class: 'panel sidebar' },
      h('h1', {}, 'Assistants'),
      h('a', { class: 'button-link', href: '#/assistants/new' }, 'New assistant'),
      listErrors, listArea),
    h('section', { class: 'panel main-column' }, editorArea)));

  async function loadList() {
    try {
      const { data } = await api.listAll('assistants', { order: 'desc' }, 500);
      if (data.length === 0) {
        replace(listArea, emptyNote('No assistants yet.'));
        return;
      }
      replace(listArea, h('ul', { class: 'item-list' }, data.map((a) => h('li', {},
        h('a', {
          href: `#/assistants/${a.id}`,
          'aria-current': a.id === param ? 'true' : null,
          'data-id': a.id,
        }, h('strong', {}, a.name || '(unnamed)'), h('small', {}, `${a.model} · ${a.id}`))))));
    } catch (e) {
      listErrors.show(e);
    }
  }
  loadList();

  if (param === 'new') {
    editor(editorArea, null, { onSaved: (a) => ctx.navigate(`#/assistants/${a.id}`), ctx });
  } else if (param) {
    const errors = errorBox();
    editorArea.append(errors, h('p', {}, 'Loading…'));
    api.get(`assistants/${param}`).then(
      (assistant) => {
        replace(editorArea);
        editor(editorArea, assistant, { onSaved: () => loadList(), onDeleted: () => ctx.navigate('#/assistants'), ctx });
      },
      (e) => {
        replace(editorArea, errors);
        errors.show(e);
      },
    );
  } else {
    editorArea.append(h('h2', {}, 'Build an assistant'),
      h('p', {}, 'Choose an assistant on the left to edit it, or create a new one.'));
  }
}

function editor(root, assistant, { onSaved, onDeleted, ctx }) {
  const a = assistant || {};
  const errors = errorBox();
  const saved = h('span', { class: 'saved-note', role: 'status', 'aria-live': 'polite' });

  const name = h('input', { type: 'text', maxLength: 256, value: a.name || '' });
  const description = h('input', { type: 'text', maxLength: 512, value: a.description || '' });
  const modelList = uid('models');
  const model = h('input', { type: 'text', required: true, list: modelList, value: a.model || 'gpt-4o-mini' });
  const instructions = h('textarea', { rows: 6, value: a.instructions || '' });
  const temperature = h('input', { type: 'number', min: 0, max: 2, step: 0.1, value: a.temperature ?? '' , placeholder: '1' });
  const topP = h('input', { type: 'number', min: 0, max: 1, step: 0.05, value: a.top_p ?? '', placeholder: '1' });
  const effort = h('select', {}, ['', 'none', 'minimal', 'low', 'medium', 'high'].map((v) => h('option', { value: v, selected: (a.reasoning_effort || '') === v }, v || '(model default)')));

  // Response format.
  const rf = a.response_format;
  const rfType = rf && typeof rf === 'object' ? rf.type : 'auto';
  const format = h('select', {}, [['auto', 'auto (default)'], ['text', 'text'], ['json_object', 'JSON object'], ['json_schema', 'JSON schema']]
    .map(([v, label]) => h('option', { value: v, selected: v === rfType }, label)));
  const js = rf && rf.type === 'json_schema' ? rf.json_schema || {} : {};
  const schemaName = h('input', { type: 'text', value: js.name || 'answer', pattern: '[a-zA-Z0-9_\\-]{1,64}' });
  const schemaStrict = h('input', { type: 'checkbox', checked: !!js.strict });
  const schemaEditor = jsonEditor({
    label: 'JSON schema',
    value: js.schema || { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false },
    rows: 10,
    check: checkSchema,
  });
  const schemaBox = h('div', { class: 'schema-box' }, field('Schema name', schemaName),
    h('div', { class: 'field checkbox' }, schemaStrict, h('label', { for: (schemaStrict.id = uid()) }, 'Strict')),
    schemaEditor);
  const showSchema = () => { schemaBox.hidden = format.value !== 'json_schema'; };
  format.addEventListener('change', showSchema);
  showSchema();

  // Tools.
  const tools = a.tools || [];
  const fileSearchTool = tools.find((t) => t.type === 'file_search');
  const fileSearch = h('input', { type: 'checkbox', checked: !!fileSearchTool });
  const codeInterpreter = h('input', { type: 'checkbox', checked: tools.some((t) => t.type === 'code_interpreter') });
  const maxResults = h('input', { type: 'number', min: 1, max: 50, placeholder: '20', value: fileSearchTool?.file_search?.max_num_results ?? '' });

  const functionsList = h('div', { class: 'functions' });
  const functionEditors = [];
  const addFunction = (definition) => {
    const ed = jsonEditor({ label: `Function ${functionEditors.length + 1}`, value: definition, rows: 10, check: checkFunction });
    ed.classList.add('function-editor');
    const remove = button('Remove function', () => {
      functionEditors.splice(functionEditors.indexOf(ed), 1);
      ed.remove();
    }, { class: 'small danger' });
    ed.append(remove);
    functionEditors.push(ed);
    functionsList.append(ed);
    return ed;
  };
  for (const t of tools.filter((x) => x.type === 'function')) addFunction(t.function);

  // file_search: the assistant's vector store (at most one).
  const storeIds = a.tool_resources?.file_search?.vector_store_ids || [];
  const store = h('select', { 'aria-describedby': 'store-counts' });
  const storeCounts = h('small', { class: 'hint', id: 'store-counts', 'aria-live': 'polite' });
  const storeErrors = errorBox();
  const storeUploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads into the vector store' });
  const newStoreName = h('input', { type: 'text', placeholder: 'name of a new store' });
  async function loadStores(selected) {
    try {
      const { data } = await api.listAll('vector_stores', {}, 500);
      replace(store, h('option', { value: '' }, '(none)'),
        data.map((s) => h('option', { value: s.id, selected: s.id === selected }, `${s.name || '(unnamed)'} (${s.id})`)));
      if (selected && !data.some((s) => s.id === selected)) {
        store.append(h('option', { value: selected, selected: true }, selected));
      }
      showCounts();
    } catch (e) {
      storeErrors.show(e);
    }
  }
  let countsTimer = null;
  async function showCounts() {
    clearTimeout(countsTimer);
    if (!store.value) {
      storeCounts.textContent = '';
      return;
    }
    try {
      const s = await api.get(`vector_stores/${store.value}`);
      storeCounts.textContent = `${s.status}: ${countsText(s.file_counts)}`;
      // Follow ingestion while the editor is on the page.
      if ((s.status === 'in_progress' || s.file_counts.in_progress > 0) && store.isConnected) {
        countsTimer = setTimeout(showCounts, 1000);
      }
    } catch (e) {
      storeCounts.textContent = api.describeError(e);
    }
  }
  store.addEventListener('change', showCounts);
  const createStore = button('Create store', (e) => busy(e.currentTarget, storeErrors, async () => {
    const s = await api.post('vector_stores', { name: newStoreName.value.trim() || undefined });
    newStoreName.value = '';
    await loadStores(s.id);
  }));
  const storeZone = dropZone({
    label: 'Upload files into the selected store',
    onFiles: async (files) => {
      storeErrors.clear();
      try {
        if (!store.value) {
          const s = await api.post('vector_stores', { name: newStoreName.value.trim() || `${name.value || 'assistant'} files` });
          await loadStores(s.id);
        }
        await uploadIntoStore(store.value, files, storeUploads);
      } catch (e) {
        storeErrors.show(e);
      }
      showCounts();
    },
  });
  loadStores(storeIds[0]);

  // code_interpreter: files in its sandbox (at most 20).
  const ciSelected = new Set(a.tool_resources?.code_interpreter?.file_ids || []);
  const ciList = h('div', { class: 'checklist', role: 'group', 'aria-label': 'Files for code_interpreter' });
  const ciErrors = errorBox();
  const ciUploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads for code_interpreter' });
  async function loadCiFiles() {
    try {
      const { data } = await api.listAll('files', { purpose: 'assistants' }, 2000);
      const known = new Set(data.map((f) => f.id));
      const rows = data.map((f) => [f.id, `${f.filename} (${f.id})`]);
      for (const id of ciSelected) if (!known.has(id)) rows.unshift([id, id]);
      replace(ciList, rows.length ? rows.map(([id, label]) => {
        const box = h('input', { type: 'checkbox', value: id, checked: ciSelected.has(id) });
        box.addEventListener('change', () => (box.checked ? ciSelected.add(id) : ciSelected.delete(id)));
        return h('div', { class: 'field checkbox' }, box, h('label', { for: (box.id = uid()) }, label));
      }) : emptyNote('No files yet: upload some.'));
    } catch (e) {
      ciErrors.show(e);
    }
  }
  const ciZone = dropZone({
    label: 'Upload files for code_interpreter',
    onFiles: async (files) => {
      const uploaded = await uploadWithProgress(files, ciUploads, 'assistants');
      for (const f of uploaded) ciSelected.add(f.id);
      loadCiFiles();
    },
  });
  loadCiFiles();

  const metadata = metadataEditor(a.metadata || {});
  const fileSearchBody = h('div', { class: 'tool-body' },
    h('div', { class: 'grid-2' }, field('Vector store', store), field('Max results', maxResults)),
    storeCounts,
    h('div', { class: 'inline-form' }, field('New store', newStoreName), createStore),
    storeZone, storeUploads, storeErrors);
  const codeBody = h('div', { class: 'tool-body' }, ciList, ciZone, ciUploads, ciErrors);

  function readForm() {
    if (!model.value.trim()) {
      model.focus();
      throw new Error('Model: required.');
    }
    const body = {
      name: name.value.trim() || null,
      description: description.value.trim() || null,
      model: model.value.trim(),
      instructions: instructions.value || null,
      temperature: temperature.value === '' ? null : Number(temperature.value),
      top_p: topP.value === '' ? null : Number(topP.value),
      reasoning_effort: effort.value || null,
      metadata: metadata.read(),
    };
    if (format.value === 'auto') body.response_format = 'auto';
    else if (format.value === 'json_schema') {
      body.response_format = {
        type: 'json_schema',
        json_schema: { name: schemaName.value.trim(), schema: schemaEditor.read(), strict: schemaStrict.checked },
      };
    } else body.response_format = { type: format.value };
    const toolList = [];
    if (codeInterpreter.checked) toolList.push({ type: 'code_interpreter' });
    if (fileSearch.checked) {
      const t = { type: 'file_search' };
      if (maxResults.value) t.file_search = { max_num_results: Number(maxResults.value) };
      toolList.push(t);
    }
    const names = new Set();
    for (const ed of functionEditors) {
      const value = ed.read();
      const fn = value.type === 'function' && value.function ? value.function : value;
      if (names.has(fn.name)) throw new Error(`Two functions are named "${fn.name}".`);
      names.add(fn.name);
      toolList.push({ type: 'function', function: fn });
    }
    body.tools = toolList;
    body.tool_resources = {
      code_interpreter: { file_ids: codeInterpreter.checked ? [...ciSelected] : [] },
      file_search: { vector_store_ids: fileSearch.checked && store.value ? [store.value] : [] },
    };
    if (!assistant) {
      // Creation: leave out what was not set, so the server's defaults apply.
      for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
    }
    return body;
  }

  const save = h('button', { type: 'submit' }, assistant ? 'Save changes' : 'Create assistant');
  const form = h('form', { class: 'assistant-form', 'aria-label': assistant ? 'Edit assistant' : 'New assistant', novalidate: true });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    saved.textContent = '';
    busy(save, errors, async () => {
      const body = readForm();
      const result = assistant
        ? await api.post(`assistants/${assistant.id}`, body)
        : await api.post('assistants', body);
      saved.textContent = `Saved ${result.id}.`;
      form.dataset.savedId = result.id;
      localStorage.setItem(LAST_ASSISTANT, result.id);
      onSaved?.(result);
    });
  });

  const actions = h('div', { class: 'toolbar' }, save, saved);
  if (assistant) {
    actions.append(
      h('a', {
        class: 'button-link secondary',
        href: '#/threads',
        onclick: () => localStorage.setItem(LAST_ASSISTANT, assistant.id),
      }, 'Try it in a thread'),
      button('Delete assistant', (e) => {
        if (!window.confirm(`Delete assistant ${assistant.name || assistant.id}?`)) return;
        busy(e.currentTarget, errors, async () => {
          await api.del(`assistants/${assistant.id}`);
          onDeleted?.();
        });
      }, { class: 'danger' }));
  }

  append(form, [
    h('h2', {}, assistant ? (assistant.name || '(unnamed assistant)') : 'New assistant'),
    assistant ? h('p', { class: 'hint' }, h('code', {}, assistant.id), ` · created ${formatTime(assistant.created_at)}`) : null,
    h('div', { class: 'grid-2' }, field('Name', name), field('Model', model)),
    h('datalist', { id: modelList }, MODELS.map((m) => h('option', { value: m }))),
    field('Description', description),
    field('Instructions', instructions),
    h('div', { class: 'grid-3' }, field('Temperature', temperature, '0 to 2'), field('Top P', topP, '0 to 1'),
      field('Reasoning effort', effort)),
    h('fieldset', {}, h('legend', {}, 'Response format'), field('Format', format), schemaBox),
    h('fieldset', { class: 'tools' }, h('legend', {}, 'Tools'),
      h('div', { class: 'tool' },
        h('div', { class: 'field checkbox' }, fileSearch, h('label', { for: (fileSearch.id = uid()) }, 'file_search')),
        fileSearchBody),
      h('div', { class: 'tool' },
        h('div', { class: 'field checkbox' }, codeInterpreter, h('label', { for: (codeInterpreter.id = uid()) }, 'code_interpreter')),
        codeBody),
      h('div', { class: 'tool' },
        h('h3', {}, 'Functions'),
        functionsList,
        button('Add function', () => addFunction(functionEditors.length ? { name: '', parameters: { type: 'object', properties: {} } } : FUNCTION_TEMPLATE).area.focus()))),
    metadata,
    errors,
    actions]);
  // A tool's settings show only while the tool is on.
  for (const [box, body] of [[fileSearch, fileSearchBody], [codeInterpreter, codeBody]]) {
    const sync = () => { body.hidden = !box.checked; };
    box.addEventListener('change', sync);
    sync();
  }
  root.append(form);
  void ctx;
}
