import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { UnauthenticatedReason } from '../errors';
import type { Caller } from './caller';

export interface TokenCacheLimits {
  /** Verified tokens remembered (least recently used dropped first). */
  verifiedMax: number;
  /** Refused tokens remembered. */
  refusedMax: number;
  /** How long a refusal is remembered. */
  refusedTtlMs: number;
}

/** A cache key for a token: its SHA-256, so no cache holds a usable credential. */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64url');
}

interface Verified {
  caller: Caller;
  /** The token is accepted until then: its `exp` plus the clock tolerance, as jose would. */
  validUntil: number;
}

interface Refused {
  reason: UnauthenticatedReason;
  until: number;
}

export type CacheVerdict = { caller: Caller } | { refused: UnauthenticatedReason } | undefined;

/**
 * Verdicts on tokens already seen, keyed by digest, both bounded LRUs. Expiry is checked
 * against the injected clock on every read (not lru-cache's own TTL clock), so a cached
 * token stops being accepted at its `exp` exactly as a fresh verification would.
 */
export class TokenCache {
  readonly #verified: LRUCache<string, Verified>;
  readonly #refused: LRUCache<string, Refused>;
  readonly #refusedTtlMs: number;
  hits = 0;
  refusedHits = 0;

  constructor(limits: TokenCacheLimits) {
    this.#verified = new LRUCache({ max: limits.verifiedMax });
    this.#refused = new LRUCache({ max: limits.refusedMax });
    this.#refusedTtlMs = limits.refusedTtlMs;
  }

  verdict(digest: string, now: number): CacheVerdict {
    const verified = this.#verified.get(digest);
    if (verified) {
      if (now < verified.validUntil) {
        this.hits += 1;
        return { caller: verified.caller };
      }
      // It was good and its time is up: expired, no need to ask jose.
      this.#verified.delete(digest);
      this.refuse(digest, 'expired', now);
    }
    const refused = this.#refused.get(digest);
    if (!refused) return undefined;
    if (now >= refused.until) {
      this.#refused.delete(digest);
      return undefined;
    }
    this.refusedHits += 1;
    return { refused: refused.reason };
  }

  accept(digest: string, caller: Caller, validUntil: number): void {
    this.#verified.set(digest, { caller, validUntil });
  }

  refuse(digest: string, reason: UnauthenticatedReason, now: number): void {
    this.#refused.set(digest, { reason, until: now + this.#refusedTtlMs });
  }

  /** Forgets every verdict (the signing keys changed). */
  clear(): void {
    this.#verified.clear();
    this.#refused.clear();
  }

  get sizes(): { verified: number; refused: number } {
    return { verified: this.#verified.size, refused: this.#refused.size };
  }
}
