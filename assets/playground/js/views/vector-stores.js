// Vector stores: create, list, delete; a store's files (add existing ones, upload new ones
// into it, remove them) with their ingestion status and the store's `file_counts`, polled
// until ingestion is done; a search box that shows the ranked chunks.

import * as api from '../api.js';
import { h, replace, formatBytes, formatTime, field, badge } from '../dom.js';
import { errorBox, button, dropZone, uploadWithProgress, table, emptyNote, busy } from '../ui.js';

const POLL_MS = 1000;

export function countsText(c) {
  if (!c) return '';
  return `${c.completed}/${c.total} ready` + (c.in_progress ? `, ${c.in_progress} in progress` : '')
    + (c.failed ? `, ${c.failed} failed` : '') + (c.cancelled ? `, ${c.cancelled} cancelled` : '');
}

/** Uploads `files` and adds each to the store; returns the vector-store files. */
export async function uploadIntoStore(storeId, files, progressList) {
  const uploaded = await uploadWithProgress(files, progressList, 'assistants');
  const added = [];
  for (const file of uploaded) {
    added.push(await api.post(`vector_stores/${storeId}/files`, { file_id: file.id }));
  }
  return added;
}

export function vectorStoresView(root, storeId, ctx) {
  if (storeId) return storeDetail(root, storeId, ctx);
  return storeList(root, ctx);
}

function storeList(root, ctx) {
  const errors = errorBox();
  const listArea = h('div', { class: 'list-area' });
  const name = h('input', { type: 'text', placeholder: 'e.g. Product manuals', maxLength: 256 });
  const days = h('input', { type: 'number', min: 1, max: 365, placeholder: 'never' });
  const create = h('button', { type: 'submit' }, 'Create vector store');
  const form = h('form', { class: 'inline-form', 'aria-label': 'Create a vector store' },
    field('Name', name), field('Expires after days idle', days), create);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(create, errors, async () => {
      const body = { name: name.value.trim() || undefined };
      if (days.value) body.expires_after = { anchor: 'last_active_at', days: Number(days.value) };
      const store = await api.post('vector_stores', body);
      ctx.navigate(`#/vector-stores/${store.id}`);
    });
  });

  async function load() {
    try {
      const { data } = await api.listAll('vector_stores', { order: 'desc' }, 500);
      if (data.length === 0) {
        replace(listArea, emptyNote('No vector stores yet.'));
        return;
      }
      replace(listArea, table([
        { label: 'Name', cell: (s) => h('a', { href: `#/vector-stores/${s.id}` }, s.name || '(unnamed)') },
        { label: 'Id', cell: (s) => h('code', {}, s.id) },
        { label: 'Status', cell: (s) => badge(s.status) },
        { label: 'Files', cell: (s) => countsText(s.file_counts) },
        { label: 'Size', cell: (s) => formatBytes(s.usage_bytes) },
        { label: 'Created', cell: (s) => formatTime(s.created_at) },
      ], data, { class: 'stores-table' }));
    } catch (e) {
      errors.show(e);
    }
  }

  root.append(h('section', { class: 'panel' },
    h('h1', {}, 'Vector stores'), form, errors,
    h('div', { class: 'toolbar' }, button('Refresh', () => load())), listArea));
  load();
}

function storeDetail(root, storeId, ctx) {
  const errors = errorBox();
  const header = h('div', { class: 'store-header' });
  const filesArea = h('div', { class: 'list-area', 'aria-live': 'polite' });
  const progress = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const existing = h('select', { 'aria-label': 'existing file' });
  const results = h('div', { class: 'search-results', 'aria-live': 'polite' });
  let timer = null;
  let stopped = false;

  const zone = dropZone({
    label: 'Upload files into this store',
    onFiles: async (files) => {
      errors.clear();
      try {
        await uploadIntoStore(storeId, files, progress);
      } catch (e) {
        errors.show(e);
      }
      refresh();
    },
  });

  const addButton = button('Add file', (e) => busy(e.currentTarget, errors, async () => {
    if (!existing.value) return;
    await api.post(`vector_stores/${storeId}/files`, { file_id: existing.value });
    refresh();
  }));

  const query = h('input', { type: 'search', placeholder: 'What are you looking for?', required: true });
  const max = h('input', { type: 'number', min: 1, max: 50, value: 10 });
  const threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.05, placeholder: 'none' });
  const searchButton = h('button', { type: 'submit' }, 'Search');
  const searchErrors = errorBox();
  const searchForm = h('form', { class: 'inline-form search-form', role: 'search' },
    field('Query', query), field('Max results', max), field('Score threshold', threshold), searchButton);
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(searchButton, searchErrors, async () => {
      const body = { query: query.value, max_num_results: Number(max.value) || 10 };
      if (threshold.value !== '') body.ranking_options = { score_threshold: Number(threshold.value) };
      const page = await api.post(`vector_stores/${storeId}/search`, body);
      if (page.data.length === 0) {
        replace(results, emptyNote('No chunk matched.'));
        return;
      }
      replace(results, h('ol', { class: 'ranked' }, page.data.map((r) => h('li', { class: 'search-result' },
        h('div', { class: 'result-head' },
          h('strong', {}, r.filename), ' ',
          h('span', { class: 'score' }, `score ${r.score.toFixed(3)}`)),
        r.content.map((c) => h('blockquote', { class: 'chunk' }, c.text))))));
    });
  });

  async function loadExisting() {
    try {
      const { data } = await api.listAll('files', { purpose: 'assistants' }, 2000);
      replace(existing, h('option', { value: '' }, 'choose a file…'),
        data.map((f) => h('option', { value: f.id }, `${f.filename} (${f.id})`)));
    } catch (e) {
      errors.show(e);
    }
  }

  async function refresh() {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const store = await api.get(`vector_stores/${storeId}`);
      const { data: files } = await api.listAll(`vector_stores/${storeId}/files`, { order: 'asc' }, 2000);
      if (stopped) return;
      replace(header,
        h('h1', {}, store.name || '(unnamed store)'),
        h('p', {}, h('code', {}, store.id), ' ', badge(store.status)),
        h('p', { class: 'counts', 'data-counts': JSON.stringify(store.file_counts) },
          `Files: ${countsText(store.file_counts)} · ${formatBytes(store.usage_bytes)}`),
        store.expires_at ? h('p', {}, `Expires ${formatTime(store.expires_at)}`) : null);
      if (files.length === 0) {
        replace(filesArea, emptyNote('No files in this store yet.'));
      } else {
        replace(filesArea, table([
          { label: 'File', cell: (f) => fileName(f.id) },
          { label: 'Status', cell: (f) => badge(f.status) },
          { label: 'Size', cell: (f) => formatBytes(f.usage_bytes) },
          { label: 'Error', cell: (f) => (f.last_error ? `${f.last_error.code}: ${f.last_error.message}` : '') },
          {
            label: 'Actions',
            cell: (f) => button('Remove', (e) => busy(e.currentTarget, errors, async () => {
              await api.del(`vector_stores/${storeId}/files/${f.id}`);
              refresh();
            }), { class: 'danger', 'aria-label': `remove ${f.id} from the store` }),
          },
        ], files, { class: 'store-files' }));
      }
      const busyIngesting = store.status === 'in_progress' || store.file_counts.in_progress > 0;
      if (busyIngesting) timer = setTimeout(refresh, POLL_MS);
    } catch (e) {
      errors.show(e);
    }
  }

  const deleteButton = button('Delete store', (e) => {
    if (!window.confirm(`Delete vector store ${storeId}? Its files stay.`)) return;
    busy(e.currentTarget, errors, async () => {
      await api.del(`vector_stores/${storeId}`);
      ctx.navigate('#/vector-stores');
    });
  }, { class: 'danger' });

  root.append(h('section', { class: 'panel store-detail' },
    h('p', {}, h('a', { href: '#/vector-stores' }, '← All vector stores')),
    header, errors,
    h('h2', {}, 'Files'),
    h('div', { class: 'upload-bar' }, zone, h('div', { class: 'inline-form' }, field('Existing file', existing), addButton)),
    progress, filesArea,
    h('h2', {}, 'Search'),
    searchForm, searchErrors, results,
    h('div', { class: 'toolbar end' }, deleteButton)));
  loadExisting();
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function fileName(fileId) {
  const el = h('span', { 'data-file-id': fileId }, h('code', {}, fileId));
  api.fileObject(fileId).then((f) => replace(el, f.filename, ' ', h('code', {}, fileId)), () => {});
  return el;
}
