import { createHash } from 'node:crypto';
import { chain } from '../lib/chain';
import { TransportError } from './errors';
import type { KeyDisableReason, KeyStatus } from './status';
import { withHeader, withRequest, type Interceptor, type UpstreamHandler, type UpstreamRequest } from './types';

/** `key_` + the first 8 hex characters of sha256(key). Reveals nothing usable about the key. */
export function keyFingerprint(secret: string): string {
  return `key_${createHash('sha256').update(secret).digest('hex').slice(0, 8)}`;
}

/**
 * One API key. The secret sits in a private field, so logging or serialising the object
 * by mistake shows the fingerprint only.
 */
export class ApiKey {
  readonly fingerprint: string;
  readonly #secret: string;
  /** `disabled`: DeepSeek refused the key (401/402) and no success has come through it since. */
  state: 'active' | 'disabled' = 'active';
  reason?: KeyDisableReason;
  /** When DeepSeek last refused the key (ms since epoch); the least recently refused key is the last resort. */
  refusedAt = 0;
  /** A call is probing this refused key while others are usable; other calls keep away meanwhile. */
  probing = false;

  constructor(secret: string) {
    this.#secret = secret;
    this.fingerprint = keyFingerprint(secret);
  }

  /** The `authorization` header value: only ever put on the outgoing request. */
  authorization(): string {
    return `Bearer ${this.#secret}`;
  }

  /** Replaces every occurrence of this key in `text`. */
  scrub(text: string): string {
    return text.split(this.#secret).join('[redacted]');
  }

  toJSON(): KeyStatus {
    return this.reason ? { fingerprint: this.fingerprint, state: this.state, reason: this.reason } : { fingerprint: this.fingerprint, state: this.state };
  }
}

export interface KeyPoolOptions {
  /**
   * While another key is usable, a refused key is probed again by one call after this long (a
   * 402 ends with a top-up, a 401 may have been DeepSeek's own hiccup); 0: not while another
   * key is usable. With no usable key left the least recently refused key is used anyway.
   */
  retryAfterMs?: number;
  onDisable?: (key: ApiKey, reason: KeyDisableReason) => void;
  onEnable?: (key: ApiKey) => void;
  now?: () => number;
}

/** The key for one exchange, and whether it is a refused one (a probe or the last resort). */
export interface PickedKey {
  key: ApiKey;
  refused: boolean;
}

/**
 * Round-robin over the usable keys. A key refused with 401/402 leaves the rotation while
 * another usable key remains; with none left, calls go to the least recently refused key, so
 * the service never stops asking DeepSeek and reports its real answer (a top-up or a restored
 * key shows at the next call). A success through a refused key puts it back.
 */
export class KeyPool {
  readonly #keys: ApiKey[];
  readonly #options: KeyPoolOptions;
  readonly #now: () => number;
  #cursor = 0;

  constructor(secrets: string[], options: KeyPoolOptions = {}) {
    if (secrets.length === 0) throw new Error('The transport needs at least one DeepSeek API key');
    this.#keys = [...new Set(secrets)].map((secret) => new ApiKey(secret));
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The key for an attempt's next exchange, none of `tried`. With `refusedAllowed`, first a
   * refused key due for a probe while others are usable (marked `probing` until `succeeded`,
   * `refused` or `released`); then the next usable key; then, when no usable key is left, the
   * least recently refused one. Undefined only when every candidate has been tried: an
   * attempt that has tried nothing always gets a key.
   */
  pick(tried: ReadonlySet<ApiKey> = new Set(), refusedAllowed = true): PickedKey | undefined {
    // Whether any key is in rotation, without a filtered copy of the keys on every exchange.
    const usable = this.#keys.some((key) => key.state === 'active');
    if (refusedAllowed && usable) {
      const due = this.#dueForProbe(tried);
      if (due) {
        due.probing = true;
        // The probe serves this call: if it comes back, the rotation goes on after it.
        this.#cursor = (this.#keys.indexOf(due) + 1) % this.#keys.length;
        return { key: due, refused: true };
      }
    }
    const count = this.#keys.length;
    for (let step = 0; step < count; step++) {
      const index = (this.#cursor + step) % count;
      const key = this.#keys[index];
      if (key.state === 'active' && !tried.has(key)) {
        this.#cursor = (index + 1) % count;
        return { key, refused: false };
      }
    }
    if (!refusedAllowed || usable) return undefined;
    const lastResort = this.#keys
      .filter((key) => !tried.has(key))
      .reduce<ApiKey | undefined>((oldest, key) => (oldest && oldest.refusedAt <= key.refusedAt ? oldest : key), undefined);
    return lastResort && { key: lastResort, refused: true };
  }

  /** DeepSeek refused `key` (401/402): out of the rotation while another key is usable. */
  refused(key: ApiKey, reason: KeyDisableReason): void {
    key.probing = false;
    key.refusedAt = this.#now();
    const changed = key.state !== 'disabled' || key.reason !== reason;
    key.state = 'disabled';
    key.reason = reason;
    if (changed) this.#options.onDisable?.(key, reason);
  }

  /** A call through `key` succeeded: a refused key is back in the rotation. */
  succeeded(key: ApiKey): void {
    key.probing = false;
    if (key.state === 'active') return;
    key.state = 'active';
    key.reason = undefined;
    this.#options.onEnable?.(key);
  }

  /** A call through `key` ended without a verdict on it (network failure, abort, a 400): probe again later. */
  released(key: ApiKey): void {
    key.probing = false;
  }

  /** Removes every configured key from `text` (error bodies echo keys sometimes). */
  scrub(text: string): string {
    return this.#keys.reduce((result, key) => key.scrub(result), text);
  }

  snapshot(): KeyStatus[] {
    return this.#keys.map((key) => key.toJSON());
  }

  #dueForProbe(tried: ReadonlySet<ApiKey>): ApiKey | undefined {
    const retryAfterMs = this.#options.retryAfterMs ?? 0;
    if (retryAfterMs <= 0) return undefined;
    const now = this.#now();
    return this.#keys.find(
      (key) => key.state === 'disabled' && !key.probing && !tried.has(key) && now - key.refusedAt >= retryAfterMs,
    );
  }
}

/** A 401 (the key is wrong) or 402 (its account has no balance) takes the key out of rotation. */
function refusalOf(error: unknown): KeyDisableReason | undefined {
  if (!(error instanceof TransportError) || error.failure.kind !== 'status') return undefined;
  if (error.failure.status === 401) return 'unauthorized';
  if (error.failure.status === 402) return 'insufficient_balance';
  return undefined;
}

/**
 * Puts a key on each exchange. A 401 or 402 marks that key refused and the same attempt goes
 * on with the next usable key (not counted as a retry; each key is tried at most once per
 * attempt, and at most one refused key: a probe or the last resort). When the attempt has no
 * key left to try it fails with the last refusal: DeepSeek's own answer, never a synthetic
 * error without a request. A success through a refused key puts it back in the rotation.
 */
export function keyPoolInterceptor(keys: KeyPool): Interceptor {
  return (next) => <T>(request: UpstreamRequest, handler: UpstreamHandler<T>): Promise<T> => {
    const tried = new Set<ApiKey>();
    let refusedAllowed = true;
    let lastRefusal: unknown;
    // One exchange per key tried, each after the previous one's refusal.
    const exchange = (): Promise<T> => {
      const picked = keys.pick(tried, refusedAllowed);
      // Only after a refusal: an attempt that has tried nothing always gets a key.
      if (!picked) return Promise.reject(lastRefusal);
      const { key } = picked;
      tried.add(key);
      if (picked.refused) refusedAllowed = false;
      return chain(
        () =>
          next(
            withRequest(request, {
              headers: withHeader(request.headers, 'authorization', key.authorization()),
              key: { fingerprint: key.fingerprint },
            }),
            handler,
          ),
        (value) => {
          keys.succeeded(key);
          return value;
        },
        (error) => {
          const reason = refusalOf(error);
          if (!reason || request.signal?.aborted) {
            keys.released(key);
            throw error;
          }
          keys.refused(key, reason);
          lastRefusal = error;
          return exchange();
        },
      );
    };
    return chain(exchange);
  };
}
