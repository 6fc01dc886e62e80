// One message of a thread: its content parts and attachments. The assistant's text is
// Markdown, sanitized (markdown.js); the user's is shown as plain text. `image_file` parts
// are fetched with the key and shown from a blob URL; `image_url` parts (any host) are shown
// as links, since the page loads images from nowhere else.

import * as api from '../api.js';
import { h, replace, formatTime, badge } from '../dom.js';
import { renderText, plainText } from '../markdown.js';

/** An image of a file, fetched with the key. */
export function fileImage(fileId, alt) {
  const img = h('img', { alt: alt || `image ${fileId}`, 'data-file-id': fileId, class: 'file-image' });
  const figure = h('figure', { class: 'image-part', 'aria-busy': 'true' }, img,
    h('figcaption', {}, h('a', {
      href: '#',
      class: 'file-link',
      'data-file-id': fileId,
      onclick: (e) => {
        e.preventDefault();
        api.downloadFile(fileId).catch((err) => figure.append(h('span', { class: 'inline-error', role: 'alert' }, api.describeError(err))));
      },
    }, 'Download image')));
  api.fileObjectUrl(fileId).then(
    (src) => {
      img.src = src;
      figure.removeAttribute('aria-busy');
    },
    (err) => {
      figure.removeAttribute('aria-busy');
      img.remove();
      figure.prepend(h('span', { class: 'inline-error', role: 'alert' }, `Image ${fileId}: ${api.describeError(err)}`));
    },
  );
  return figure;
}

function contentPart(part, role) {
  switch (part && part.type) {
    case 'text': {
      const text = part.text || { value: '' };
      return role === 'assistant' ? renderText(text) : plainText(text.value);
    }
    case 'image_file':
      return fileImage(part.image_file?.file_id);
    case 'image_url':
      return h('p', { class: 'image-url' }, h('a', {
        href: /^https?:/i.test(part.image_url?.url || '') ? part.image_url.url : null,
        target: '_blank',
        rel: 'noopener noreferrer nofollow',
      }, `[image: ${part.image_url?.url || ''}]`));
    case 'refusal':
      return h('p', { class: 'refusal' }, `Refused: ${part.refusal || ''}`);
    default:
      return h('pre', { class: 'unknown-part' }, JSON.stringify(part, null, 2));
  }
}

function attachments(message) {
  const list = message.attachments || [];
  if (list.length === 0) return null;
  return h('ul', { class: 'attachments', 'aria-label': 'Attachments' }, list.map((att) => {
    const label = h('a', {
      href: '#',
      class: 'file-link',
      'data-file-id': att.file_id,
      onclick: (e) => {
        e.preventDefault();
        api.downloadFile(att.file_id).catch((err) => item.append(h('span', { class: 'inline-error', role: 'alert' }, ` ${api.describeError(err)}`)));
      },
    }, att.file_id);
    api.fileObject(att.file_id).then((f) => { label.textContent = f.filename; }, () => {});
    const item = h('li', {}, '📎 ', label, ` (${(att.tools || []).map((t) => t.type).join(', ')})`);
    return item;
  }));
}

/** The element of a message; `update(el, message)` re-renders it in place. */
export function renderMessage(message) {
  const el = h('article', { class: 'message', 'data-id': message.id, 'data-role': message.role });
  updateMessage(el, message);
  return el;
}

export function updateMessage(el, message) {
  const role = message.role === 'assistant' ? 'Assistant' : 'User';
  const status = message.status && message.status !== 'completed' ? badge(message.status) : null;
  replace(el,
    h('header', { class: 'message-head' },
      h('strong', {}, role), ' ',
      h('small', {}, formatTime(message.created_at)), ' ', status),
    h('div', { class: 'message-body' }, (message.content || []).map((p) => contentPart(p, message.role))),
    attachments(message),
    message.incomplete_details ? h('p', { class: 'hint' }, `Incomplete: ${message.incomplete_details.reason}`) : null);
  el.dataset.status = message.status || '';
}
