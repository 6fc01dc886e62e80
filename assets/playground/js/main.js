// The page's entry point: the key form, the section router (the URL's fragment:
// #/assistants/asst_…, #/threads/thread_…, #/files, #/vector-stores/vs_…; never the key),
// and a last-resort error banner, so that no failure leaves the page blank or broken.

import * as api from './api.js';
import { getKey, setKey, isOpenServer, setOpenServer } from './storage.js';
import { clear, h } from './dom.js';
import { assistantsView } from './views/assistants.js';
import { threadsView } from './views/threads.js';
import { filesView } from './views/files.js';
import { vectorStoresView } from './views/vector-stores.js';

const ROUTES = [
  { re: /^#\/assistants(?:\/(new|asst_[A-Za-z0-9]+))?$/, section: 'assistants', view: assistantsView },
  { re: /^#\/threads(?:\/(thread_[A-Za-z0-9]+))?$/, section: 'threads', view: threadsView },
  { re: /^#\/files$/, section: 'files', view: filesView },
  { re: /^#\/vector-stores(?:\/(vs_[A-Za-z0-9]+))?$/, section: 'vector-stores', view: vectorStoresView },
];

const view = document.getElementById('view');
const keyInput = document.getElementById('api-key');
const keyStatus = document.getElementById('key-status');
const keyError = document.getElementById('key-error');
const globalError = document.getElementById('global-error');
let cleanup = null;

function showBox(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

function render() {
  const hash = location.hash || '#/assistants';
  let match = null;
  let route = null;
  for (const r of ROUTES) {
    match = r.re.exec(hash);
    if (match) {
      route = r;
      break;
    }
  }
  if (!route) {
    location.replace('#/assistants');
    return;
  }
  for (const link of document.querySelectorAll('.tabs a')) {
    if (link.dataset.section === route.section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  showBox(globalError, '');
  clear(view);
  if (!getKey() && !isOpenServer()) {
    // Nothing is asked of the API before the user says which key to use.
    view.append(h('section', { class: 'panel connect' },
      h('h1', {}, 'Connect'),
      h('p', {}, 'Enter an API key of this server (one of ASSISTANTS_API_KEYS) above and press “Use key”.'),
      h('p', { class: 'hint' }, 'A server running without keys: press “Use key” with the field empty.'),
      h('p', { class: 'hint' }, 'The key is kept in this tab only, sent only to this server, and never put in a URL.')));
    return;
  }
  try {
    cleanup = route.view(view, match[1] || null, { navigate });
  } catch (e) {
    showBox(globalError, api.describeError(e));
  }
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function checkKey() {
  showBox(keyError, '');
  keyStatus.textContent = 'Checking…';
  try {
    await api.get('assistants', { limit: 1 });
    keyStatus.textContent = getKey() ? 'Key accepted (kept for this tab only).' : 'This server asks for no key.';
    keyStatus.dataset.state = 'ok';
    setOpenServer(!getKey());
    return true;
  } catch (e) {
    keyStatus.textContent = '';
    keyStatus.dataset.state = 'error';
    showBox(keyError, api.describeError(e));
    return false;
  }
}

document.getElementById('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  setKey(key);
  api.forgetCaches();
  const ok = await checkKey();
  // An empty key that was refused: stay on the connect panel.
  if (ok || key) render();
});

document.getElementById('key-forget').addEventListener('click', () => {
  setKey('');
  keyInput.value = '';
  api.forgetCaches();
  keyStatus.textContent = 'Key forgotten.';
  setOpenServer(false);
  render();
});

window.addEventListener('hashchange', render);
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showBox(globalError, api.describeError(event.reason));
});
window.addEventListener('error', (event) => {
  showBox(globalError, `Error: ${event.message}`);
});

keyInput.value = getKey();
render();
if (getKey()) checkKey();
else keyStatus.textContent = 'Enter a key of this server (ASSISTANTS_API_KEYS).';
