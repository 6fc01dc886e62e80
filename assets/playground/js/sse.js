// Server-Sent Events from a fetch Response (EventSource cannot POST or send a key):
// `event:`/`data:` lines, dispatched at each blank line; comments (`: keep-alive`) skipped.
// Each event's data is parsed as JSON, except the closing `[DONE]`.

/** Yields {event, data} for each event of the response body, as it arrives. */
export async function* readEvents(response, signal) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let name = '';
  let data = [];
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (data.length > 0 || name) {
            yield parse(name || 'message', data.join('\n'));
          }
          name = '';
          data = [];
        } else if (line.startsWith(':')) {
          // A comment: keep-alive.
        } else {
          const colon = line.indexOf(':');
          const fieldName = colon < 0 ? line : line.slice(0, colon);
          let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
          if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
          if (fieldName === 'event') name = fieldValue;
          else if (fieldName === 'data') data.push(fieldValue);
        }
      }
      if (done) break;
    }
    if (data.length > 0) yield parse(name || 'message', data.join('\n'));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function parse(event, text) {
  if (text === '[DONE]') return { event, data: text };
  try {
    return { event, data: JSON.parse(text) };
  } catch {
    return { event, data: text };
  }
}
