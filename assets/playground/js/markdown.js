// Model output is untrusted: it is rendered as Markdown (marked) whose raw HTML is escaped,
// never passed through, then sanitized (DOMPurify) as a second line of defence. Images in
// Markdown become links (an external image would leak the page's visit and break the
// Content-Security-Policy); links open in a new tab without an opener or a referrer.
// Annotations: `file_citation` markers become numbered footnotes linking to the cited file's
// content, `file_path` ranges (`sandbox:/mnt/data/x`) links that download the file.

import { Marked } from '../vendor/marked.esm.js';
import DOMPurify from '../vendor/purify.es.mjs';
import { downloadFile, fileObject, describeError } from './api.js';
import { h } from './dom.js';

function escapeHtml(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    // Raw HTML in the text is shown as the text it is.
    html({ text, block }) {
      return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
    },
    image({ href, text }) {
      const label = text || href;
      return `<a href="${escapeHtml(href)}">[image: ${escapeHtml(label)}]</a>`;
    },
  },
});

const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select',
    'iframe', 'object', 'embed', 'video', 'audio', 'source', 'picture', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'class', 'id', 'srcset', 'src', 'action', 'formaction', 'target'],
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|#)/i,
};

// Private-use characters around a footnote number: never in model text by accident, and
// kept as they are by Markdown and the sanitizer.
const CITE_OPEN = '\uE000';
const CITE_CLOSE = '\uE001';
const CITE_RE = /\uE000(\d+)\uE001/g;
const FILE_LINK = '#playground-file-';

/** The text with each annotation's range replaced by what stands for it. */
function substitute(value, annotations, footnotes, fileLinks) {
  let chars = Array.from(value);
  // From the end, so earlier indices stay valid.
  const sorted = [...annotations].sort((a, b) => (b.start_index ?? 0) - (a.start_index ?? 0));
  for (const annotation of sorted) {
    let start = annotation.start_index;
    let end = annotation.end_index;
    const wanted = annotation.text;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= chars.length
      && (!wanted || chars.slice(start, end).join('') === wanted))) {
      // Indices that do not match (another counting of characters): find the text instead.
      if (!wanted) continue;
      const at = chars.join('').lastIndexOf(wanted);
      if (at < 0) continue;
      start = Array.from(chars.join('').slice(0, at)).length;
      end = start + Array.from(wanted).length;
    }
    let replacement;
    if (annotation.type === 'file_citation' && annotation.file_citation) {
      const fileId = annotation.file_citation.file_id;
      let n = footnotes.findIndex((f) => f.fileId === fileId) + 1;
      if (n === 0) {
        // `【0:0†name.txt】`: the part after † is the file's name, shown until the file's
        // own name is known.
        const named = /†([^】]*)】?$/.exec(wanted || '');
        footnotes.push({ fileId, name: named ? named[1] : fileId, quote: annotation.file_citation.quote });
        n = footnotes.length;
      }
      replacement = `${CITE_OPEN}${n}${CITE_CLOSE}`;
    } else if (annotation.type === 'file_path' && annotation.file_path) {
      const i = fileLinks.length;
      fileLinks.push({ fileId: annotation.file_path.file_id, path: wanted || '' });
      const inLinkTarget = start >= 2 && chars[start - 1] === '(' && chars[start - 2] === ']';
      const name = (wanted || 'file').split('/').pop();
      replacement = inLinkTarget ? `${FILE_LINK}${i}` : `[${name}](${FILE_LINK}${i})`;
    } else {
      continue;
    }
    chars = [...chars.slice(0, start), ...Array.from(replacement), ...chars.slice(end)];
  }
  return chars.join('');
}

function onDownload(fileId, name) {
  return (event) => {
    event.preventDefault();
    const link = event.currentTarget;
    link.setAttribute('aria-busy', 'true');
    downloadFile(fileId, name)
      .catch((e) => {
        link.after(h('span', { class: 'inline-error', role: 'alert' }, ` ${describeError(e)}`));
      })
      .finally(() => link.removeAttribute('aria-busy'));
  };
}

/** Replaces footnote placeholders in the text nodes under `root` with reference links. */
function placeReferences(root, footnotes, scope) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) {
    if (walker.currentNode.nodeValue.includes(CITE_OPEN)) nodes.push(walker.currentNode);
  }
  for (const node of nodes) {
    const text = node.nodeValue;
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(CITE_RE)) {
      parts.push(text.slice(last, m.index));
      const n = Number(m[1]);
      const note = footnotes[n - 1];
      parts.push(h('sup', { class: 'cite' },
        h('a', {
          href: '#',
          'data-footnote': n,
          'data-file-id': note ? note.fileId : '',
          'aria-label': `source ${n}`,
          onclick: (event) => {
            event.preventDefault();
            const target = scope.querySelector(`[data-footnote-item="${n}"] a`);
            if (target) {
              target.scrollIntoView({ block: 'nearest' });
              target.focus();
            }
          },
        }, `[${n}]`)));
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last).replace(/[\uE000\uE001]/g, ''));
    node.replaceWith(...parts.filter((p) => p !== ''));
  }
}

/**
 * A text content part ({value, annotations}) as sanitized nodes: the rendered Markdown and,
 * when it cites files, a list of footnotes.
 */
export function renderText(text) {
  const footnotes = [];
  const fileLinks = [];
  const source = substitute(text.value || '', text.annotations || [], footnotes, fileLinks);
  const html = marked.parse(source);
  const fragment = DOMPurify.sanitize(html, PURIFY);
  const body = h('div', { class: 'markdown' });
  body.append(fragment);
  for (const a of body.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (href.startsWith(FILE_LINK)) {
      const link = fileLinks[Number(href.slice(FILE_LINK.length))];
      if (!link) {
        a.removeAttribute('href');
        continue;
      }
      a.setAttribute('href', '#');
      a.setAttribute('data-file-id', link.fileId);
      a.classList.add('file-link');
      a.title = `Download ${link.path}`;
      a.addEventListener('click', onDownload(link.fileId, link.path.split('/').pop()));
    } else if (href.startsWith('#')) {
      // A fragment of the model's own would move the page's router: drop it.
      a.removeAttribute('href');
    } else {
      a.setAttribute('target', '_blank');
      a.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  }
  const wrapper = h('div', { class: 'text-part' }, body);
  placeReferences(body, footnotes, wrapper);
  if (footnotes.length > 0) {
    const list = h('ol', { class: 'footnotes', 'aria-label': 'Sources' });
    footnotes.forEach((note, i) => {
      const link = h('a', {
        href: '#',
        class: 'file-link',
        'data-file-id': note.fileId,
        title: `Download ${note.name}`,
        onclick: onDownload(note.fileId),
      }, note.name);
      list.append(h('li', { 'data-footnote-item': i + 1 }, link,
        note.quote ? h('q', {}, note.quote) : null));
      // The file's own name, once known.
      fileObject(note.fileId).then((f) => {
        if (f && f.filename) link.textContent = f.filename;
      }, () => {});
    });
    wrapper.append(list);
  }
  return wrapper;
}

/** Untrusted text shown as text (user messages, logs): no Markdown, no HTML. */
export function plainText(value) {
  return h('div', { class: 'plain-text' }, value || '');
}
