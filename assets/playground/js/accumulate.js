// Merging stream deltas into snapshots, as the official SDKs do (`accumulate_delta`):
// strings are concatenated, objects merged, and array entries merged by their `index`
// (the first delta for an index creates the entry). `index`, `type` and `id` are replaced,
// never concatenated.

const REPLACED = new Set(['index', 'type', 'id']);

function copy(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function accumulate(target, delta) {
  for (const [key, value] of Object.entries(delta || {})) {
    const current = target[key];
    if (current === undefined || current === null) {
      target[key] = Array.isArray(value) ? placeByIndex([], value) : copy(value);
    } else if (value === null || value === undefined) {
      // Nothing new.
    } else if (REPLACED.has(key)) {
      target[key] = value;
    } else if (typeof current === 'string' && typeof value === 'string') {
      target[key] = current + value;
    } else if (Array.isArray(current) && Array.isArray(value)) {
      placeByIndex(current, value);
    } else if (typeof current === 'object' && typeof value === 'object' && !Array.isArray(current)) {
      accumulate(current, value);
    } else {
      target[key] = copy(value);
    }
  }
  return target;
}

function placeByIndex(list, entries) {
  for (const entry of entries) {
    if (entry && typeof entry === 'object' && Number.isInteger(entry.index)) {
      if (list[entry.index] && typeof list[entry.index] === 'object') {
        accumulate(list[entry.index], entry);
      } else {
        list[entry.index] = copy(entry);
      }
    } else {
      list.push(copy(entry));
    }
  }
  return list;
}

/** A message snapshot with a `thread.message.delta` applied. */
export function applyMessageDelta(message, delta) {
  accumulate(message, delta.delta || {});
  return message;
}

/** A step snapshot with a `thread.run.step.delta` applied. */
export function applyStepDelta(step, delta) {
  accumulate(step, delta.delta || {});
  return step;
}
