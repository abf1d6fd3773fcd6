import { createHash } from 'node:crypto';
import { UpstreamError } from '../errors';
import type { KeyDisableReason, KeyStatus } from './status';
import type { Classifier, Interceptor } from './types';

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

/** Round-robin over the active keys; keys refused with 401/402 are disabled for good. */
export class KeyPool {
  readonly #keys: ApiKey[];
  #cursor = 0;
  #lastReason: KeyDisableReason = 'unauthorized';

  constructor(
    secrets: string[],
    private readonly onDisable?: (key: ApiKey, reason: KeyDisableReason) => void,
  ) {
    if (secrets.length === 0) throw new Error('The transport needs at least one DeepSeek API key');
    this.#keys = [...new Set(secrets)].map((secret) => new ApiKey(secret));
  }

  /** The next active key not in `exclude`, or undefined when none is left. */
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
    return undefined;
  }

  disable(key: ApiKey, reason: KeyDisableReason): void {
    this.#lastReason = reason;
    if (key.state === 'disabled') return;
    key.state = 'disabled';
    key.reason = reason;
    this.onDisable?.(key, reason);
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

function disableReasonOf(error: unknown): KeyDisableReason | undefined {
  if (!(error instanceof UpstreamError)) return undefined;
  if (error.details.status === 401) return 'unauthorized';
  if (error.details.status === 402) return 'insufficient_balance';
  return undefined;
}

/**
 * Puts a key on each exchange. A 401 or 402 disables that key and the same attempt goes
 * on with the next active key (not counted as a retry; each key is tried at most once per
 * attempt). When no key is left the call fails with the last refusal (401 →
 * UPSTREAM_AUTH_FAILED, 402 → UPSTREAM_INSUFFICIENT_BALANCE), without a request when the
 * pool was already empty.
 */
export function keyPoolInterceptor(keys: KeyPool, classify: Classifier): Interceptor {
  return (next) => async (request) => {
    const tried = new Set<ApiKey>();
    let lastRefusal: unknown;
    for (;;) {
      const key = keys.pick(tried);
      if (!key) throw lastRefusal ?? classify({ kind: 'no-key', reason: keys.lastDisableReason });
      tried.add(key);
      try {
        return await next({
          ...request,
          headers: { ...request.headers, authorization: key.authorization() },
          keyFingerprint: key.fingerprint,
        });
      } catch (error) {
        const reason = disableReasonOf(error);
        if (!reason || request.signal?.aborted) throw error;
        keys.disable(key, reason);
        lastRefusal = error;
      }
    }
  };
}
