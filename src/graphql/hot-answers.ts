import { hash } from 'node:crypto';
import { context as otelContext } from '@opentelemetry/api';
import { Kind, type OperationDefinitionNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Caller } from '../auth';
import type { CachePolicy, CompletionView } from '../batching/completion-service';
import type { CompletionCache } from '../cache/completion-cache';
import { cacheKey } from '../cache/key';
import { isStorable } from '../deepseek/provider';
import type { RawOperation } from './limits';
import type { ObservedOperation } from '../telemetry/operation-observer';

/**
 * Hot answers: the HTTP response of a repeated query, served without running GraphQL again.
 *
 * A query whose every root field is a completion (`completion`, `completions`,
 * `fimCompletion`, and `__typename`) and whose every completion was read from the cache
 * (policy USE, `cached: true`, no upstream call, nothing joined) has an answer that is a
 * function of its request (document, operation name, variables, Accept), of what the caller
 * may see (kind, tenant, scopes, cache scope) and of the cache entries it read. Such an
 * answer is kept here once Apollo has produced it: its `data` as JSON text, the cache
 * entries it read (store key and DeepSeek's response id), its content type and cache policy.
 *
 * A later request with the same key is still admitted as every operation is (credentials,
 * trusted documents, `requestsPerMinute`, its span, metrics and log line), but instead of
 * parsing, validating and executing, the cache entries are read again (one store round
 * trip, counted as hits like any lookup) and the kept answer is sent only if every entry is
 * still the one it was made from; otherwise the request goes through Apollo as usual. So a
 * hot answer is never staler than the cache itself: an evicted, expired or refreshed entry
 * sends the next request down the full path. `extensions.cost`, `Cache-Control`'s
 * `max-age` and the ETag are computed per response exactly as the full path computes them.
 *
 * Bounded: at most `maxEntries` request keys and `maxBytes` of kept text (LRU), keys of at
 * most MAX_KEY_CHARS characters (longer requests are simply not kept), at most
 * MAX_VARIANTS callers' views of one request.
 */
export interface HotAnswersOptions {
  /** Request keys kept (HOT_ANSWERS_MAX_ENTRIES); 0 turns hot answers off. */
  maxEntries: number;
  /** Characters of keys and answers kept in all (HOT_ANSWERS_MAX_BYTES, counted as UTF-16 code units × 2). */
  maxBytes: number;
  cache: CompletionCache;
  /** CACHE_TTL_SECONDS: a completion's `max-age` is what its stored copy has left. */
  ttlSeconds: number;
  now?: () => number;
}

/** Requests longer than this (document + variables + name + Accept) are not kept. */
export const MAX_KEY_CHARS = 16 * 1024;
/** Callers' views (kind, tenant, scopes, cache scope) kept per request key. */
const MAX_VARIANTS = 16;
/** Longest Accept header a kept request may carry. */
const MAX_ACCEPT_CHARS = 256;

const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

const REPLAYABLE_ROOT_FIELDS: ReadonlySet<string> = new Set(['completion', 'completions', 'fimCompletion', '__typename']);

/** A completion the operation read from the cache: its store key, and which answer it was. */
interface ReadEntry {
  storeKey: string;
  upstreamId: string;
  createdAt: number;
}

/** One caller-view's kept answer. */
interface Variant {
  readonly dataJson: string;
  readonly contentType: string;
  /** `Cache-Control` as sent when the answer was not cacheable; undefined when its max-age is computed per response. */
  readonly fixedCacheControl: string | null | undefined;
  /** PUBLIC or PRIVATE when cacheable. */
  readonly scope: 'public' | 'private' | undefined;
  readonly etag: string | undefined;
  readonly operationType: string;
  readonly operationName: string | undefined;
  /** `cacheHits` of the operation that made it (DataLoader dedupes repeats within one operation). */
  readonly cacheHits: number;
  readonly entries: readonly ReadEntry[];
}

interface Kept {
  readonly variants: Map<string, Variant>;
}

/** What the full path learned about one operation that may be kept (see `HotAnswers.notes`). */
export class HotAnswerNotes {
  /** False as soon as anything makes the answer not a pure function of the cache. */
  replayable = true;
  readonly entries = new Map<string, ReadEntry>();
  callerKey: string | undefined;
  /** Set by the operation plugin when the response qualifies (see `stage`). */
  staged: StagedAnswer | undefined;

  constructor(readonly key: string) {}

  /** The operation resolved to this document: only queries of completions (and `__typename`) qualify. */
  resolved(operation: OperationDefinitionNode | null | undefined): void {
    if (!operation || operation.operation !== 'query') {
      this.replayable = false;
      return;
    }
    for (const selection of operation.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD || !REPLAYABLE_ROOT_FIELDS.has(selection.name.value)) {
        this.replayable = false;
        return;
      }
    }
  }

  /** A completion field resolved: kept only if it was read from the cache under USE. */
  completion(view: CompletionView, policy: CachePolicy, cacheScope: string | undefined): void {
    if (!this.replayable) return;
    if (policy !== 'USE' || !view.cached || !isStorable(view)) {
      this.replayable = false;
      return;
    }
    const storeKey = cacheKey(view.id, cacheScope);
    this.entries.set(storeKey, { storeKey, upstreamId: view.upstreamId, createdAt: Date.parse(view.createdAt) });
  }
}

/** What the operation plugin learned from Apollo's response (the rest comes from the HTTP reply). */
export type StagedAnswer = Omit<Variant, 'contentType' | 'fixedCacheControl'> & { cacheable: boolean };

export interface HotAnswer {
  /** The response's `data` as JSON text. */
  dataJson: string;
  contentType: string;
  cacheControl: string | undefined;
  etag: string | undefined;
}

export interface HotAnswersStats {
  entries: number;
  served: number;
  /** Kept answers found stale (an entry evicted, expired or replaced): sent down the full path. */
  stale: number;
  kept: number;
}

export class HotAnswers {
  readonly #lru: LRUCache<string, Kept>;
  readonly #cache: CompletionCache;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #served = 0;
  #stale = 0;
  #kept = 0;

  constructor(options: HotAnswersOptions) {
    this.#lru = new LRUCache<string, Kept>({
      max: Math.max(1, options.maxEntries),
      maxSize: Math.max(1, options.maxBytes),
      sizeCalculation: (kept, key) => {
        let chars = key.length;
        for (const [callerKey, variant] of kept.variants) chars += variantChars(variant, callerKey);
        return Math.max(1, chars * 2);
      },
    });
    this.#cache = options.cache;
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The key of a request that may have a hot answer, or undefined: a document sent whole
   * (no `extensions`: persisted-query hashes go the full path), a string or absent operation
   * name, object or absent variables, and no more than MAX_KEY_CHARS in all.
   */
  static keyOf(method: 'GET' | 'POST', raw: RawOperation, accept: string | undefined): string | undefined {
    const { query, operationName, variables } = raw;
    if (typeof query !== 'string' || raw.extensions !== undefined) return undefined;
    // A GraphQL name or none: the key's parts are separated by newlines, which a name cannot hold.
    if (operationName !== undefined && operationName !== null && (typeof operationName !== 'string' || !GRAPHQL_NAME.test(operationName))) return undefined;
    if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return undefined;
    const acceptValue = accept ?? '';
    if (acceptValue.length > MAX_ACCEPT_CHARS || query.length > MAX_KEY_CHARS) return undefined;
    const variablesJson = variables ? boundedJson(variables, MAX_KEY_CHARS - query.length) : '';
    if (variablesJson === undefined) return undefined;
    const key = `${method}\n${acceptValue}\n${operationName ?? ''}\n${variablesJson}\n${query}`;
    return key.length > MAX_KEY_CHARS ? undefined : key;
  }

  /** Whether some caller has a kept answer for this request key (checked before admitting it). */
  has(key: string): boolean {
    return this.#lru.has(key);
  }

  /** The notes one full-path operation fills in (see `HotAnswerNotes`). */
  notes(key: string): HotAnswerNotes {
    return new HotAnswerNotes(key);
  }

  /**
   * The full path answered: keeps what the operation plugin staged (`notes.staged`), with the
   * response's content type and `Cache-Control` as Apollo set them.
   */
  keep(notes: HotAnswerNotes, contentType: unknown, cacheControl: unknown): void {
    const staged = notes.staged;
    if (!staged || !notes.replayable || notes.callerKey === undefined || typeof contentType !== 'string') return;
    const { cacheable, ...rest } = staged;
    const variant: Variant = {
      ...rest,
      contentType,
      fixedCacheControl: cacheable ? undefined : typeof cacheControl === 'string' ? cacheControl : null,
    };
    const existing = this.#lru.get(notes.key);
    const kept: Kept = existing ?? { variants: new Map() };
    const previous = kept.variants.get(notes.callerKey);
    if (!previous && kept.variants.size >= MAX_VARIANTS) return;
    kept.variants.set(notes.callerKey, variant);
    // Set again so the LRU re-counts its size.
    this.#lru.set(notes.key, kept);
    this.#kept += 1;
  }

  /**
   * The answer kept for this request and caller, if every cache entry it was made from is
   * still stored; the operation's ledger then counts its hits, as the full path would.
   * Undefined (and the kept answer dropped when stale) otherwise.
   */
  async answer(key: string, callerKey: string, operation: ObservedOperation): Promise<HotAnswer | undefined> {
    const kept = this.#lru.get(key);
    const variant = kept?.variants.get(callerKey);
    if (!kept || !variant) return undefined;
    const maxAge = this.#maxAge(variant);
    if (maxAge !== undefined && maxAge <= 0) {
      this.#drop(key, kept, callerKey);
      return undefined;
    }
    const storeKeys = variant.entries.map((entry) => entry.storeKey);
    const found = await otelContext.with(operation.traceContext, () => this.#cache.getMany(storeKeys));
    const current = variant.entries.every((entry, index) => found[index]?.upstreamId === entry.upstreamId);
    if (!current) {
      this.#stale += 1;
      this.#drop(key, kept, callerKey);
      return undefined;
    }
    this.#served += 1;
    operation.ledger.recordCacheHits(variant.cacheHits);
    operation.resolved(variant.operationType, variant.operationName);
    operation.servedHot();
    return {
      dataJson: variant.dataJson,
      contentType: variant.contentType,
      cacheControl: maxAge === undefined ? (variant.fixedCacheControl ?? undefined) : `max-age=${maxAge}, ${variant.scope}`,
      etag: variant.etag,
    };
  }

  stats(): HotAnswersStats {
    return { entries: this.#lru.size, served: this.#served, stale: this.#stale, kept: this.#kept };
  }

  /** What Apollo's cache-control plugin would compute now: the smallest time left of any entry (undefined: not cacheable). */
  #maxAge(variant: Variant): number | undefined {
    if (variant.fixedCacheControl !== undefined) return undefined;
    const now = this.#now();
    let maxAge = Infinity;
    for (const entry of variant.entries) {
      const left = Math.floor((this.#ttlMs - Math.max(0, now - entry.createdAt)) / 1000);
      if (left < maxAge) maxAge = left;
    }
    return maxAge;
  }

  #drop(key: string, kept: Kept, callerKey: string): void {
    if (!kept.variants.delete(callerKey)) return;
    // Deleted when empty, else set again so the LRU re-counts its size.
    if (kept.variants.size === 0) this.#lru.delete(key);
    else this.#lru.set(key, kept);
  }
}

/**
 * Who sees the same answer: the caller's kind (PUBLIC or PRIVATE), tenant, scopes and cache
 * scope. Not the subject: no completion field depends on it.
 */
export function callerKeyOf(caller: Caller, cacheScope: string | undefined): string {
  let scopes = sortedScopes.get(caller.scopes);
  if (scopes === undefined) {
    scopes = [...caller.scopes].sort().join(' ');
    sortedScopes.set(caller.scopes, scopes);
  }
  return `${caller.kind}\n${caller.tenant}\n${cacheScope ?? ''}\n${scopes}`;
}

const sortedScopes = new WeakMap<ReadonlySet<string>, string>();

/** The ETag the operation plugin gives a cacheable GET answer: a hash of its `data` JSON. */
export function dataEtag(dataJson: string): string {
  return `"${hash('sha256', dataJson, 'base64url')}"`;
}

/** Nesting deeper than this is not kept (the limits refuse far less deep variables anyway). */
const MAX_JSON_DEPTH = 32;

/**
 * JSON text of `value` (as `JSON.stringify` writes it), or undefined as soon as it would be
 * longer than `budget` characters or nested deeper than MAX_JSON_DEPTH: a request with
 * megabytes of variables costs a look at its first `budget` characters, not a copy of all.
 */
export function boundedJson(value: unknown, budget: number): string | undefined {
  let used = 0;
  const write = (item: unknown, depth: number): string | undefined => {
    if (depth > MAX_JSON_DEPTH) return undefined;
    if (typeof item === 'string' && item.length > budget - used) return undefined;
    if (item === null || typeof item !== 'object') {
      const text = JSON.stringify(item) ?? 'null';
      used += text.length;
      return used > budget ? undefined : text;
    }
    const parts: string[] = [];
    used += 2; // the brackets
    if (Array.isArray(item)) {
      for (const element of item) {
        if (parts.length > 0) used += 1; // the comma
        const text = write(element, depth + 1);
        if (text === undefined) return undefined;
        parts.push(text);
      }
      return used > budget ? undefined : `[${parts.join(',')}]`;
    }
    for (const [key, element] of Object.entries(item)) {
      if (element === undefined) continue;
      const keyText = JSON.stringify(key);
      used += keyText.length + 1 + (parts.length > 0 ? 1 : 0); // the key, its colon, the comma
      const text = write(element, depth + 1);
      if (text === undefined) return undefined;
      parts.push(`${keyText}:${text}`);
    }
    return used > budget ? undefined : `{${parts.join(',')}}`;
  };
  return write(value, 0);
}

function variantChars(variant: Variant, callerKey: string): number {
  return callerKey.length + variant.dataJson.length + variant.contentType.length + variant.entries.length * 128;
}
