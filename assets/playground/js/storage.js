// What the page keeps in the browser. The API key lives in sessionStorage only: this tab,
// until it closes; never in localStorage, a cookie or a URL. The API cannot list threads,
// so the ids of recently used ones are kept in localStorage (ids only, nothing else).

const KEY = 'playground.apiKey';
const OPEN = 'playground.openServer';
// Where session storage is disabled, the key lasts as long as the page, in memory.
let memoryKey = '';
let memoryOpen = false;
const RECENT = 'playground.recentThreads';
const RECENT_MAX = 30;

export function getKey() {
  try {
    return sessionStorage.getItem(KEY) || memoryKey;
  } catch {
    return memoryKey;
  }
}

export function setKey(key) {
  memoryKey = key || '';
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: memoryKey serves.
  }
}

/** Whether this tab found that the server asks for no key. */
export function isOpenServer() {
  try {
    return sessionStorage.getItem(OPEN) === 'yes' || memoryOpen;
  } catch {
    return memoryOpen;
  }
}

export function setOpenServer(open) {
  memoryOpen = open;
  try {
    if (open) sessionStorage.setItem(OPEN, 'yes');
    else sessionStorage.removeItem(OPEN);
  } catch {
    // Storage disabled: memoryOpen serves.
  }
}

export function recentThreads() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT) || '[]');
    return Array.isArray(list) ? list.filter((id) => typeof id === 'string' && /^thread_\w+$/.test(id)) : [];
  } catch {
    return [];
  }
}

function saveRecent(list) {
  try {
    localStorage.setItem(RECENT, JSON.stringify(list.slice(0, RECENT_MAX)));
  } catch {
    // Storage full or disabled: the list is a convenience only.
  }
}

/** Moves `id` to the top of the recent list. */
export function rememberThread(id) {
  saveRecent([id, ...recentThreads().filter((t) => t !== id)]);
}

export function forgetThread(id) {
  saveRecent(recentThreads().filter((t) => t !== id));
}
