// Files: upload by picker or drag-and-drop (a progress bar per file), list, download,
// delete.

import * as api from '../api.js';
import { h, replace, formatBytes, formatTime, field } from '../dom.js';
import { errorBox, button, dropZone, uploadWithProgress, table, emptyNote, busy } from '../ui.js';

const PURPOSES = ['assistants', 'user_data', 'vision', 'batch', 'fine-tune', 'evals'];

export function filesView(root) {
  const errors = errorBox();
  const listArea = h('div', { class: 'list-area', 'aria-live': 'polite' });
  const progress = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const purpose = h('select', {}, PURPOSES.map((p) => h('option', { value: p }, p)));
  const filter = h('select', {}, h('option', { value: '' }, 'all purposes'),
    [...PURPOSES, 'assistants_output'].map((p) => h('option', { value: p }, p)));
  filter.addEventListener('change', () => load());

  const zone = dropZone({
    label: 'Choose files to upload',
    onFiles: async (files) => {
      errors.clear();
      const uploaded = await uploadWithProgress(files, progress, purpose.value);
      if (uploaded.length) await load();
    },
  });

  async function load() {
    try {
      const { data, hasMore } = await api.listAll('files', { purpose: filter.value || undefined, order: 'desc' }, 2000);
      if (data.length === 0) {
        replace(listArea, emptyNote('No files yet.'));
        return;
      }
      replace(listArea, table([
        { label: 'Name', cell: (f) => f.filename },
        { label: 'Id', cell: (f) => h('code', {}, f.id) },
        { label: 'Size', cell: (f) => formatBytes(f.bytes) },
        { label: 'Purpose', cell: (f) => f.purpose },
        { label: 'Created', cell: (f) => formatTime(f.created_at) },
        {
          label: 'Actions',
          cell: (f) => h('span', { class: 'actions' },
            button('Download', (e) => busy(e.currentTarget, errors, () => api.downloadFile(f.id, f.filename)),
              { 'aria-label': `download ${f.filename}` }),
            button('Delete', (e) => {
              if (!window.confirm(`Delete ${f.filename} (${f.id})? It is also removed from every vector store.`)) return;
              busy(e.currentTarget, errors, async () => {
                await api.del(`files/${f.id}`);
                await load();
              });
            }, { class: 'danger', 'aria-label': `delete ${f.filename}` })),
        },
      ], data, { class: 'files-table' }),
      hasMore ? h('p', { class: 'hint' }, 'Showing the newest 2,000 files.') : null);
    } catch (e) {
      errors.show(e);
      replace(listArea);
    }
  }

  root.append(
    h('section', { class: 'panel' },
      h('h1', {}, 'Files'),
      h('div', { class: 'upload-bar' }, field('Purpose', purpose), zone),
      progress,
      errors,
      h('div', { class: 'toolbar' }, field('Show', filter), button('Refresh', () => load())),
      listArea),
  );
  load();
}
