import { createLocalJWKSet, errors, type FlattenedJWSInput, type JWSHeaderParameters, type KeyLike } from 'jose';
import { UnauthenticatedError } from '../errors';
import { abortable, Deadline, linkSignals } from '../lib/abort';
import { dedupe, Singleflight } from '../lib/singleflight';
import type { Logger } from '../telemetry/logger';
import { describeFetchFailure, JwksFetchError, signingKeys, type FetchJwks } from './jwks-fetch';

export interface JwksKeysOptions {
  url: string;
  fetch: FetchJwks;
  /** One fetch, headers and body, must finish within this. */
  timeoutMs: number;
  /** A set older than this is fetched again in the background (the old one serves meanwhile). */
  maxAgeMs: number;
  /** At most one refetch per this long because a token named an unknown `kid`. */
  unknownKidCooldownMs: number;
  /** After a failed fetch, no new one for this long unless an unknown `kid` asks for it. */
  retryAfterFailureMs: number;
  maxBytes: number;
  now: () => number;
  logger: Logger;
  /** The fetched set differs from the one in use (keys rotated or withdrawn). */
  onChange: () => void;
}

export interface JwksStats {
  /** Keys in the set in use (0 before the first good fetch). */
  keys: number;
  /** When the set in use was fetched (ms since the epoch). */
  fetchedAt?: number;
  fetches: number;
  failures: number;
  /** The last fetch failed (the last good set, if any, is still in use). */
  failing: boolean;
}

interface KeySet {
  resolve: ReturnType<typeof createLocalJWKSet>;
  keys: number;
  /** The document's keys as fetched, to tell a rotation from a refetch of the same set. */
  fingerprint: string;
  fetchedAt: number;
}

/**
 * The signing keys of a JWKS URL, kept fresh without ever putting a request at the mercy
 * of the key server:
 * - the last good set stays in use until a good one replaces it: an endpoint that is down,
 *   hangs, or answers junk changes nothing but a warning (once per outage);
 * - a set older than `maxAgeMs` is refetched in the background while it keeps serving;
 * - a token naming an unknown `kid` refetches at once, at most once per cool-down (so a
 *   flood of made-up `kid`s costs one fetch per cool-down);
 * - concurrent refetches share one fetch; each is bounded by `timeoutMs`, headers and body.
 * Only the very first fetch is awaited by requests: with no set yet, a token fails with
 * 'signing keys unavailable' within `timeoutMs`.
 */
export class JwksKeys {
  readonly #options: JwksKeysOptions;
  readonly #flights = new Singleflight<'jwks', Promise<boolean>>();
  readonly #closing = new AbortController();
  #current: KeySet | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastKidRefetchAt = Number.NEGATIVE_INFINITY;
  #failing = false;
  #fetches = 0;
  #failures = 0;

  constructor(options: JwksKeysOptions) {
    this.#options = options;
  }

  /** jose's key lookup: the key for a token's header, fetching keys as described above. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<KeyLike> => {
    const { now, maxAgeMs, retryAfterFailureMs, unknownKidCooldownMs } = this.#options;
    let set = this.#current;
    if (!set) {
      if (this.#flights.size > 0 || now() - this.#lastAttemptAt >= retryAfterFailureMs) await this.#refresh();
      set = this.#current;
      if (!set) throw new UnauthenticatedError('signing keys unavailable');
    } else if (now() - set.fetchedAt >= maxAgeMs && this.#flights.size === 0 && now() - this.#lastAttemptAt >= retryAfterFailureMs) {
      // Never rejects (see #fetch); nobody waits for it.
      void this.#refresh();
    }
    try {
      return await set.resolve(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
    }
    // Unknown kid. A set that arrived meanwhile is tried as it is; a fetch in flight is
    // joined, cool-down or not; otherwise a new fetch starts unless the cool-down forbids it.
    if (this.#current === set) {
      if (this.#flights.size === 0) {
        if (now() - this.#lastKidRefetchAt < unknownKidCooldownMs) throw new UnauthenticatedError('unknown signing key');
        this.#lastKidRefetchAt = now();
      }
      await this.#refresh();
    }
    // The newest set (the same one when the refetch failed); no match is 'unknown signing key'.
    return (this.#current ?? set).resolve(header, token);
  };

  /** Resolves once no fetch is in flight. */
  async idle(): Promise<void> {
    await Promise.all(this.#flights.values());
  }

  stats(): JwksStats {
    return {
      keys: this.#current?.keys ?? 0,
      fetchedAt: this.#current?.fetchedAt,
      fetches: this.#fetches,
      failures: this.#failures,
      failing: this.#failing,
    };
  }

  /** Cuts a fetch in flight; no fetch starts afterwards. */
  async close(): Promise<void> {
    this.#closing.abort(new JwksFetchError('closed'));
    await this.idle();
  }

  #refresh(): Promise<boolean> {
    return dedupe(this.#flights, 'jwks', () => this.#fetch());
  }

  /** One fetch. Resolves true when it installed a good set; never rejects. */
  async #fetch(): Promise<boolean> {
    if (this.#closing.signal.aborted) return false;
    const { url, timeoutMs, maxBytes, now, logger } = this.#options;
    this.#lastAttemptAt = now();
    this.#fetches += 1;
    const deadline = new Deadline(timeoutMs, () => new JwksFetchError(`no complete answer within ${timeoutMs} ms`));
    const linked = linkSignals(deadline.signal, this.#closing.signal);
    try {
      // `abortable` bounds a fetcher that ignores its signal too.
      const document = await abortable(this.#options.fetch(url, { signal: linked.signal, maxBytes }), linked.signal);
      const jwks = signingKeys(document);
      const fingerprint = JSON.stringify(jwks.keys);
      const previous = this.#current;
      this.#current = { resolve: createLocalJWKSet(jwks), keys: jwks.keys.length, fingerprint, fetchedAt: now() };
      if (this.#failing) logger.info({ jwksUrl: safeUrl(url), keys: jwks.keys.length }, 'JWKS fetched again; signing keys are current');
      this.#failing = false;
      if (previous && previous.fingerprint !== fingerprint) this.#options.onChange();
      return true;
    } catch (error) {
      this.#failures += 1;
      const facts = { jwksUrl: safeUrl(url), problem: describeFetchFailure(error), lastGoodKeys: this.#current?.keys ?? 0 };
      if (this.#closing.signal.aborted) return false;
      if (this.#failing) {
        logger.debug(facts, 'JWKS fetch failed again');
      } else {
        this.#failing = true;
        logger.warn(
          facts,
          this.#current
            ? 'JWKS fetch failed; verifying with the last good signing keys until the endpoint recovers'
            : 'JWKS fetch failed and no signing keys were ever fetched; bearer tokens are refused until it succeeds',
        );
      }
      return false;
    } finally {
      deadline.dispose();
      linked.dispose();
    }
  }
}

/** The URL without credentials or query, which may hold secrets. */
function safeUrl(url: string): string {
  try {
    const { origin, pathname } = new URL(url);
    return `${origin}${pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}
