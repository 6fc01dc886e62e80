// The client of this server's public API (`/v1`, beside the page, so it works under any
// path prefix). Every call sends the key from the tab's session storage as a bearer token;
// nothing puts it in a URL. Failures become ApiError with the OpenAI error's message, type,
// code and the HTTP status, which the views show as they are.

import { getKey } from './storage.js';
import { readEvents } from './sse.js';

export const API_BASE = new URL('../v1/', document.baseURI);

export const INCLUDE_SEARCH_CONTENT = 'step_details.tool_calls[*].file_search.results[*].content';

export class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || (status ? `HTTP ${status}` : 'The request failed.'));
    this.name = 'ApiError';
    this.status = status;
    this.type = error.type || null;
    this.code = error.code || null;
    this.param = error.param || null;
  }

  /** The error in words, for people. */
  describe() {
    if (this.status === 0) return `Could not reach the server: ${this.message}`;
    if (this.status === 401) {
      return `The API key was refused (401 Unauthorized): ${this.message}`;
    }
    const param = this.param ? ` (${this.param})` : '';
    return `${this.message}${param} — HTTP ${this.status}${this.type ? `, ${this.type}` : ''}`;
  }
}

/** An error from anything (ApiError, a network failure, a bug) as words. */
export function describeError(err) {
  if (err instanceof ApiError) return err.describe();
  if (err && err.name === 'AbortError') return 'Stopped.';
  return `Error: ${err && err.message ? err.message : String(err)}`;
}

function url(path, query) {
  const u = new URL(path.replace(/^\//, ''), API_BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) u.searchParams.append(name, v);
  }
  return u;
}

function headers(json) {
  const h = { 'OpenAI-Beta': 'assistants=v2' };
  const key = getKey();
  if (key) h.Authorization = `Bearer ${key}`;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

async function errorOf(response) {
  let body = null;
  const text = await response.text().catch(() => '');
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const error = body && typeof body.error === 'object' && body.error
    ? body.error
    : { message: text.trim().slice(0, 500) || response.statusText || `HTTP ${response.status}` };
  return new ApiError(response.status, error);
}

async function send(method, path, { body, query, signal, accept } = {}) {
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers: { ...headers(body !== undefined), ...(accept ? { Accept: accept } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { message: e.message });
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function get(path, query, signal) {
  return (await send('GET', path, { query, signal })).json();
}

export async function post(path, body = {}, query, signal) {
  return (await send('POST', path, { body, query, signal })).json();
}

export async function del(path) {
  return (await send('DELETE', path)).json();
}

/**
 * Every object of a list endpoint, page after page (`after` cursors), up to `max`.
 * Returns {data, hasMore}.
 */
export async function listAll(path, query = {}, max = 1000) {
  const data = [];
  let after;
  for (;;) {
    const page = await get(path, { limit: 100, ...query, after });
    data.push(...page.data);
    if (!page.has_more || page.data.length === 0) return { data, hasMore: false };
    if (data.length >= max) return { data, hasMore: true };
    after = page.data[page.data.length - 1].id;
  }
}

/**
 * A streamed request (`stream: true`): yields the Assistants events {event, data} as they
 * arrive; an `error` event is thrown as ApiError.
 */
export async function* stream(path, body, query, signal) {
  const response = await send('POST', path, {
    body: { ...body, stream: true },
    query,
    signal,
    accept: 'text/event-stream',
  });
  for await (const event of readEvents(response, signal)) {
    if (event.event === 'error') {
      const data = event.data && typeof event.data === 'object' ? event.data : {};
      throw new ApiError(data.status || 500, data.error || data);
    }
    if (event.event === 'done') return;
    yield event;
  }
}

/**
 * Uploads `file` (multipart, streamed by the browser) with `purpose`. `onProgress(sent,
 * total)` follows the upload: XMLHttpRequest, since fetch reports no upload progress.
 */
export function upload(file, purpose = 'assistants', onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('purpose', purpose);
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url('files'));
    for (const [name, value] of Object.entries(headers(false))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
      } else {
        const error = body && body.error ? body.error : { message: xhr.statusText || `HTTP ${xhr.status}` };
        reject(new ApiError(xhr.status, error));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, { message: 'the upload failed' })));
    xhr.addEventListener('abort', () => reject(new ApiError(0, { message: 'the upload was stopped' })));
    xhr.send(form);
  });
}

/** A file's bytes, fetched with the key (never an <img src> or link carrying the key). */
export async function fileContent(fileId, signal) {
  const response = await send('GET', `files/${encodeURIComponent(fileId)}/content`, { signal });
  return response.blob();
}

const blobUrls = new Map();

/** An object URL for a file's content, fetched once per page and kept. */
export function fileObjectUrl(fileId) {
  if (!blobUrls.has(fileId)) {
    const pending = fileContent(fileId).then((blob) => URL.createObjectURL(blob));
    pending.catch(() => blobUrls.delete(fileId));
    blobUrls.set(fileId, pending);
  }
  return blobUrls.get(fileId);
}

const fileInfo = new Map();

/** A file object (name, size), fetched once per page. */
export function fileObject(fileId) {
  if (!fileInfo.has(fileId)) {
    const pending = get(`files/${encodeURIComponent(fileId)}`);
    pending.catch(() => fileInfo.delete(fileId));
    fileInfo.set(fileId, pending);
  }
  return fileInfo.get(fileId);
}

/** Saves a file to the user's disk: fetched with the key, handed over as a blob. */
export async function downloadFile(fileId, filename) {
  const blob = await fileContent(fileId);
  let name = filename;
  if (!name) {
    try {
      name = (await fileObject(fileId)).filename;
    } catch {
      name = fileId;
    }
  }
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = name.split('/').pop() || fileId;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** Forgets cached file contents and names (another key may see other files). */
export function forgetCaches() {
  for (const pending of blobUrls.values()) pending.then((u) => URL.revokeObjectURL(u), () => {});
  blobUrls.clear();
  fileInfo.clear();
}
