import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CompletionRequest } from '../deepseek/types';

/**
 * Completion ids are content addresses: the same normalised request gives the same id on
 * every replica and after every restart, so the id doubles as the cache key and as the
 * federation key of `Completion`. Bump the version when the canonical form or the meaning
 * of a request field changes: old entries then simply stop being found.
 */
const ID_PREFIX = 'cmpl_v1_';
/** sha256 is 32 bytes: 43 base64url characters without padding. */
const ID_PATTERN = /^cmpl_v1_[A-Za-z0-9_-]{43}$/;

/**
 * Deterministic JSON: object keys sorted, properties whose value is `undefined` dropped
 * (so `{ a: 1, b: undefined }` and `{ a: 1 }` are the same request), arrays kept in order.
 * Built by concatenation in one pass per level (no per-key arrays or joins): it runs on
 * every completion's id, and the form must never change (ids are content addresses).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // JSON.stringify gives undefined for undefined/functions/symbols: spell them as null,
    // as JSON.stringify does inside arrays.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) {
      if (i > 0) out += ',';
      out += canonicalJson(value[i]);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = sortInPlace(Object.keys(record));
  let out = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    if (out.length > 1) out += ',';
    // A plain key needs no escaping: the quotes alone are what JSON.stringify would give.
    out += PLAIN_KEY.test(key) ? `"${key}":` : `${JSON.stringify(key)}:`;
    out += canonicalJson(item);
  }
  return `${out}}`;
}

const PLAIN_KEY = /^[A-Za-z0-9_]*$/;
const INSERTION_SORT_MAX = 32;

/**
 * `keys.sort()` (UTF-16 code unit order, as `Array.prototype.sort` without a comparator
 * orders strings), by insertion, in place. V8's sort allocates its working arrays on every
 * call: about 1 KB to sort four keys, 1.75 KB a completion id of a chat request, against
 * nothing here. Request objects have a dozen keys at most; anything larger gets V8's sort
 * (insertion is quadratic).
 */
function sortInPlace(keys: string[]): string[] {
  if (keys.length > INSERTION_SORT_MAX) return keys.sort();
  for (let i = 1; i < keys.length; i += 1) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j -= 1;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/**
 * Versioned content address of a normalised request: also `Completion.id`; stable across
 * replicas and restarts. The cache policy is not part of a request, so it is not part of
 * the id either: USE, BYPASS and REFRESH of one input address the same entry.
 */
export function completionId(request: CompletionRequest): string {
  // A load asks for its id in the per-request loader and again in the coalescer; requests
  // are never mutated after normalisation, so the id is kept per request object.
  let id = ids.get(request);
  if (id === undefined) {
    const canonical = canonicalJson(request);
    // Repeats (cache hits) skip the hash: short canonical forms remember their id.
    id = recent.get(canonical);
    if (id === undefined) {
      id = ID_PREFIX + hash('sha256', canonical, 'base64url');
      if (canonical.length <= MEMO_MAX_CHARS) recent.set(canonical, id);
    }
    ids.set(request, id);
  }
  return id;
}

const ids = new WeakMap<CompletionRequest, string>();

/** Canonical forms up to this long are remembered with their id (the memo holds at most about 4,096 × 2 KiB × 2 bytes = 16 MiB). */
const MEMO_MAX_CHARS = 2048;
const MEMO_MAX_ENTRIES = 4096;
/**
 * Recently hashed canonical forms → ids, the least recently used forgotten first. An LRU, not
 * a Map emptied from its oldest key: a Map keeps a deleted entry's slot until it is rehashed,
 * and finding its oldest key walks over every slot deleted before it, so with every miss
 * inserting and forgetting one form, remembering cost 1.1-1.8 µs (all distinct, 4,096 kept)
 * against 0.3 µs for the LRU.
 */
const recent = new LRUCache<string, string>({ max: MEMO_MAX_ENTRIES });

/**
 * The store key of a completion in a cache scope. With CACHE_SCOPE=tenant every tenant has
 * its own keys (`<tenant>/<id>`), so a tenant can neither read, evict nor detect through
 * `cached` what another stored, even when it knows the id; the global scope is the bare id.
 * Tenants are checked to be short and plain (src/auth), so a key cannot be forged.
 */
export function cacheKey(id: string, scope: string | undefined): string {
  return scope === undefined ? id : `${scope}/${id}`;
}

/** Shape check, so an unknown or garbage id never reaches the store. */
export function isCompletionId(id: string): boolean {
  return typeof id === 'string' && ID_PATTERN.test(id);
}
