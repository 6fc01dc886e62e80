// Reusable pieces of the views: error boxes, busy buttons, the JSON editor with validation,
// the metadata editor, and the file drop zone with upload progress.

import { describeError, upload } from './api.js';
import { h, clear, formatBytes, uid } from './dom.js';

/** A region that shows an error in words (role=alert) until cleared. */
export function errorBox() {
  const el = h('div', { class: 'error-box', role: 'alert', hidden: true });
  el.show = (err) => {
    el.textContent = describeError(err);
    if (err && err.status) el.setAttribute('data-status', err.status);
    else el.removeAttribute('data-status');
    el.hidden = false;
  };
  el.clear = () => {
    el.textContent = '';
    el.removeAttribute('data-status');
    el.hidden = true;
  };
  return el;
}

/** Runs `action` with `button` disabled; an error goes to `errors` (an errorBox). */
export async function busy(button, errors, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  errors?.clear();
  try {
    return await action();
  } catch (e) {
    if (errors) errors.show(e);
    else throw e;
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

export function button(label, onclick, attrs = {}) {
  return h('button', { type: 'button', onclick, ...attrs }, label);
}

/** Where in `text` a JSON.parse error points, as "line L, column C". */
function position(text, message) {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}

/**
 * A textarea for JSON with live validation. `check(value)` may return an error string for a
 * parsed value that is valid JSON but wrong (e.g. a schema that is not an object).
 * `.read()` returns the value or throws an Error naming the field.
 */
export function jsonEditor({ label, value, rows = 8, check, optional = false, placeholder }) {
  const id = uid('json');
  const area = h('textarea', {
    id,
    rows,
    spellcheck: false,
    class: 'code',
    placeholder: placeholder || '',
    value: value === undefined ? '' : (typeof value === 'string' ? value : JSON.stringify(value, null, 2)),
  });
  const status = h('small', { class: 'json-status', 'aria-live': 'polite', id: `${id}-status` });
  area.setAttribute('aria-describedby', status.id);
  const wrapper = h('div', { class: 'field json-field' }, h('label', { for: id }, label), area, status);
  const validate = () => {
    const text = area.value.trim();
    if (!text) {
      if (optional) {
        status.textContent = '';
        wrapper.classList.remove('invalid');
        area.removeAttribute('aria-invalid');
        return { ok: true, value: undefined };
      }
      return fail('Required.');
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return fail(`Invalid JSON: ${e.message}${position(text, e.message)}`);
    }
    const problem = check ? check(parsed) : null;
    if (problem) return fail(problem);
    status.textContent = 'Valid JSON.';
    wrapper.classList.remove('invalid');
    area.removeAttribute('aria-invalid');
    return { ok: true, value: parsed };
  };
  function fail(message) {
    status.textContent = message;
    wrapper.classList.add('invalid');
    area.setAttribute('aria-invalid', 'true');
    return { ok: false, message };
  }
  area.addEventListener('input', validate);
  if (area.value) validate();
  wrapper.area = area;
  wrapper.read = () => {
    const result = validate();
    if (!result.ok) {
      area.focus();
      throw new Error(`${label}: ${result.message}`);
    }
    return result.value;
  };
  return wrapper;
}

/** Key/value rows for `metadata` (at most 16 pairs, as the API allows). */
export function metadataEditor(initial = {}) {
  const rows = h('div', { class: 'metadata-rows' });
  const wrapper = h('fieldset', { class: 'metadata' }, h('legend', {}, 'Metadata'), rows);
  const addRow = (key = '', value = '') => {
    const k = h('input', { type: 'text', value: key, placeholder: 'key', maxLength: 64, 'aria-label': 'metadata key' });
    const v = h('input', { type: 'text', value, placeholder: 'value', maxLength: 512, 'aria-label': 'metadata value' });
    const row = h('div', { class: 'metadata-row' }, k, v,
      button('Remove', () => row.remove(), { class: 'small', 'aria-label': 'remove metadata pair' }));
    rows.append(row);
    return k;
  };
  for (const [k, v] of Object.entries(initial || {})) addRow(k, v);
  wrapper.append(button('Add pair', () => addRow().focus(), { class: 'small' }));
  wrapper.read = () => {
    const out = {};
    for (const row of rows.children) {
      const [k, v] = row.querySelectorAll('input');
      if (k.value.trim()) out[k.value.trim()] = v.value;
    }
    if (Object.keys(out).length > 16) throw new Error('Metadata: at most 16 pairs.');
    return out;
  };
  return wrapper;
}

/**
 * A drop zone with a file picker (keyboard reachable: the picker is a real input).
 * `onFiles(File[])` gets what was picked or dropped.
 */
export function dropZone({ label = 'Upload files', multiple = true, onFiles }) {
  const input = h('input', { type: 'file', multiple, class: 'file-input' });
  const zone = h('div', { class: 'drop-zone' },
    h('label', { for: (input.id = uid('upload')) }, label),
    input,
    h('small', { class: 'hint' }, 'or drop files here'));
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length) onFiles(files);
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) onFiles(files);
  });
  zone.input = input;
  return zone;
}

/**
 * Uploads `files` one after another, each with a progress bar in `list`; returns the file
 * objects of those that were uploaded (failures are shown in their row).
 */
export async function uploadWithProgress(files, list, purpose = 'assistants') {
  const done = [];
  for (const file of files) {
    const bar = h('progress', { max: file.size || 1, value: 0 });
    const status = h('span', { class: 'upload-status' }, 'uploading…');
    const row = h('li', { class: 'upload-row', 'data-filename': file.name },
      h('span', { class: 'upload-name' }, `${file.name} (${formatBytes(file.size)})`), bar, status);
    list.append(row);
    try {
      const object = await upload(file, purpose, (sent, total) => {
        bar.max = total || 1;
        bar.value = sent;
        status.textContent = `${Math.round((100 * sent) / (total || 1))}%`;
      });
      bar.value = bar.max;
      status.textContent = `uploaded as ${object.id}`;
      row.classList.add('uploaded');
      row.setAttribute('data-file-id', object.id);
      done.push(object);
    } catch (e) {
      status.textContent = describeError(e);
      status.setAttribute('role', 'alert');
      row.classList.add('failed');
    }
  }
  return done;
}

/** A small table: `columns` [{label, cell(row) -> node|string}]. */
export function table(columns, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-id': r.id || '' }, columns.map((c) => h('td', {}, c.cell(r)))))));
}

export function emptyNote(text) {
  return h('p', { class: 'empty' }, text);
}

export { clear };
