// Small DOM helpers. Elements are built with properties and text nodes, never from HTML
// strings: the only HTML the page parses is sanitized Markdown (markdown.js).

/**
 * h('button', {class: 'x', onclick: fn, type: 'button'}, 'Save', child, ...)
 * Attributes starting with `on` become listeners; `class`, `for` and `data-*`/`aria-*` are set
 * as attributes; everything else as a property (value, checked, disabled, ...). Children may be
 * strings, nodes, arrays, null or false.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class' || name === 'for' || name === 'role' || name === 'list'
      || name.startsWith('data-') || name.startsWith('aria-') || name === 'title'
      || name === 'name' || name === 'autocomplete' || name === 'accept' || name === 'form') {
      el.setAttribute(name, value === true ? '' : String(value));
    } else {
      el[name] = value;
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

export function formatBytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export function formatTime(seconds) {
  if (!seconds) return '';
  return new Date(seconds * 1000).toLocaleString();
}

export function pretty(value) {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

let counter = 0;
/** A unique id for label/input pairs. */
export function uid(prefix = 'f') {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: returns the wrapper; `control` gets an id if it has none. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

/** A status word as a badge (`completed`, `failed`, ...). */
export function badge(status) {
  return h('span', { class: `badge status-${status}`, 'data-status': status }, status);
}
