/**
 * Canonical JSON's key order, shared by the engine (the push body of a call) and the ledger service
 * (the stored, hashed form of it): every object's keys in ascending order at every depth.
 */
export const NOT_PLAIN = Symbol('not plain JSON data');
/** `v` with every object's keys in ascending order (the same objects where they already are), or NOT_PLAIN. */
export function sortedPlain(v: unknown): unknown {
  if (v === null) return v;
  switch (typeof v) {
    case 'string': case 'boolean': return v;
    case 'number': return Number.isFinite(v) ? v : NOT_PLAIN;
    case 'object': break;
    default: return NOT_PLAIN;
  }
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = sortedPlain(v[i]);
      if (x === NOT_PLAIN) return NOT_PLAIN;
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype || typeof (v as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  let inOrder = true;
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) { inOrder = false; break; }
  let out: Record<string, unknown> | null = null;
  if (!inOrder) {
    // a re-keyed object would list integer-like keys first whatever the order they are set in
    for (const k of keys) if (/^(0|[1-9][0-9]*)$/.test(k)) return NOT_PLAIN;
    keys.sort();
    out = {};
  }
  for (const k of keys) {
    if (o[k] === undefined) return NOT_PLAIN;
    const x = sortedPlain(o[k]);
    if (x === NOT_PLAIN) return NOT_PLAIN;
    if (out) out[k] = x;
    else if (x !== o[k]) (out = { ...o })[k] = x;
  }
  return out ?? v;
}
