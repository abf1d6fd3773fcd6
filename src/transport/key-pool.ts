import { createHash } from 'node:crypto';
import { TransportError } from './errors';
import type { KeyDisableReason, KeyStatus } from './status';
import type { Interceptor } from './types';

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
  state: 'active' | 'disabled' = 'active';
  reason?: KeyDisableReason;
  /** When the key left the rotation (ms since epoch). */
  disabledAt = 0;
  /** A call is trying this disabled key again; other calls keep away meanwhile. */
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
   * A disabled key is tried again by one call after this long (a 402 ends with a top-up, a
   * 401 may have been DeepSeek's own hiccup); 0 keeps it out for good.
   */
  retryAfterMs?: number;
  onDisable?: (key: ApiKey, reason: KeyDisableReason) => void;
  onEnable?: (key: ApiKey) => void;
  now?: () => number;
}

/**
 * Round-robin over the active keys. A key refused with 401/402 leaves the rotation; after
 * `retryAfterMs` one call probes it again, and a success brings it back.
 */
export class KeyPool {
  readonly #keys: ApiKey[];
  readonly #options: KeyPoolOptions;
  readonly #now: () => number;
  #cursor = 0;
  #lastReason: KeyDisableReason = 'unauthorized';

  constructor(secrets: string[], options: KeyPoolOptions = {}) {
    if (secrets.length === 0) throw new Error('The transport needs at least one DeepSeek API key');
    this.#keys = [...new Set(secrets)].map((secret) => new ApiKey(secret));
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The next active key not in `exclude`; failing that, a disabled key due for a probe
   * (marked `probing` until `succeeded`, `disable` or `released`); undefined when none is left.
   */
  pick(exclude: ReadonlySet<ApiKey> = new Set()): ApiKey | undefined {
    const count = this.#keys.length;
    for (let step = 0; step < count; step++) {
      const index = (this.#cursor + step) % count;
      const key = this.#keys[index];
      if (key.state === 'active' && !exclude.has(key)) {
        this.#cursor = (index + 1) % count;
        return key;
      }
    }
    const retryAfterMs = this.#options.retryAfterMs ?? 0;
    if (retryAfterMs <= 0) return undefined;
    const due = this.#keys.find(
      (key) => key.state === 'disabled' && !key.probing && !exclude.has(key) && this.#now() - key.disabledAt >= retryAfterMs,
    );
    if (due) due.probing = true;
    return due;
  }

  disable(key: ApiKey, reason: KeyDisableReason): void {
    this.#lastReason = reason;
    key.probing = false;
    key.disabledAt = this.#now();
    if (key.state === 'disabled') return;
    key.state = 'disabled';
    key.reason = reason;
    this.#options.onDisable?.(key, reason);
  }

  /** A call through `key` succeeded: a disabled key under probe is back in the rotation. */
  succeeded(key: ApiKey): void {
    key.probing = false;
    if (key.state === 'active') return;
    key.state = 'active';
    key.reason = undefined;
    this.#options.onEnable?.(key);
  }

  /** A probe ended without a verdict on the key (network failure, abort): probe again later. */
  released(key: ApiKey): void {
    key.probing = false;
  }

  /** Why the most recent key was disabled (the error to give when none is left). */
  get lastDisableReason(): KeyDisableReason {
    return this.#lastReason;
  }

  /** Removes every configured key from `text` (error bodies echo keys sometimes). */
  scrub(text: string): string {
    return this.#keys.reduce((result, key) => key.scrub(result), text);
  }

  snapshot(): KeyStatus[] {
    return this.#keys.map((key) => key.toJSON());
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
 * Puts a key on each exchange. A 401 or 402 disables that key and the same attempt goes
 * on with the next active key (not counted as a retry; each key is tried at most once per
 * attempt). A success through a key under probe puts it back in the rotation. When no key
 * is left the call fails with the last refusal (the 401 or 402 itself), or with a `no-key`
 * error and no request when the pool was already empty.
 */
export function keyPoolInterceptor(keys: KeyPool): Interceptor {
  return (next) => async (request, handler) => {
    const tried = new Set<ApiKey>();
    let lastRefusal: unknown;
    for (;;) {
      const key = keys.pick(tried);
      if (!key) throw lastRefusal ?? new TransportError({ kind: 'no-key', reason: keys.lastDisableReason });
      tried.add(key);
      try {
        const value = await next(
          {
            ...request,
            headers: { ...request.headers, authorization: key.authorization() },
            key: { fingerprint: key.fingerprint },
          },
          handler,
        );
        keys.succeeded(key);
        return value;
      } catch (error) {
        const reason = refusalOf(error);
        if (!reason || request.signal?.aborted) {
          keys.released(key);
          throw error;
        }
        keys.disable(key, reason);
        lastRefusal = error;
      }
    }
  };
}
