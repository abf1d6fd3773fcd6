import { errors, jwtVerify, type JWTVerifyOptions, type JWTVerifyResult, type KeyLike } from 'jose';
import { Agent } from 'undici';
import type { Config } from '../config';
import { UnauthenticatedError, type UnauthenticatedReason } from '../errors';
import { dedupe, Singleflight } from '../lib/singleflight';
import type { Logger } from '../telemetry/logger';
import { bearerToken } from './bearer';
import { anonymousCaller, unauthenticatedCaller, type Caller } from './caller';
import { callerFromClaims } from './claims';
import { MAX_JWKS_BYTES, undiciJwksFetcher, type FetchJwks } from './jwks-fetch';
import { JwksKeys, type JwksStats } from './jwks-keys';
import { JWKS_ALGORITHMS, staticKey } from './key-source';
import { LASTING_REFUSALS, refusalReason } from './refusal';
import { TokenCache, tokenDigest } from './token-cache';

/** Bounds and timings not in the configuration; defaults in `AUTH_DEFAULTS`. */
export interface AuthLimits {
  /** Verified tokens remembered until they expire. */
  verifiedCacheMax: number;
  /** Refused tokens remembered, each for `refusedTtlMs`. */
  refusedCacheMax: number;
  refusedTtlMs: number;
  /** At most one JWKS refetch per this long because a token named an unknown `kid`. */
  unknownKidCooldownMs: number;
  /** After a failed JWKS fetch, no scheduled one for this long. */
  jwksRetryAfterFailureMs: number;
  /** Largest JWKS body read. */
  jwksMaxBytes: number;
}

export const AUTH_DEFAULTS: AuthLimits = {
  verifiedCacheMax: 10_000,
  refusedCacheMax: 1_000,
  refusedTtlMs: 30_000,
  unknownKidCooldownMs: 30_000,
  jwksRetryAfterFailureMs: 5_000,
  jwksMaxBytes: MAX_JWKS_BYTES,
};

export interface AuthenticatorOptions {
  logger: Logger;
  /** The clock for token times and cache ages (ms since the epoch); default `Date.now`. */
  now?: () => number;
  /** How JWKS documents are fetched; default undici with its own connection pool. */
  fetchJwks?: FetchJwks;
  limits?: Partial<AuthLimits>;
}

export interface AuthenticateInput {
  /** The Authorization header (or the WebSocket `connection_init` equivalent), if sent. */
  authorization?: string;
  /** The client address, the subject of callers without a token. */
  address: string;
}

/** Counters for metrics and health: never a token, a subject or a scope. */
export interface AuthenticatorStats {
  mode: 'none' | 'jwt';
  keySource?: 'jwks' | 'public-key' | 'secret';
  /** Full verifications run through jose (cache misses). */
  verifications: number;
  cache: { verified: number; refused: number; hits: number; refusedHits: number };
  refusals: Partial<Record<UnauthenticatedReason, number>>;
  jwks?: JwksStats;
}

export interface Authenticator {
  /**
   * The caller behind a request. Resolves an anonymous caller (AUTH_MODE=none) or an
   * unauthenticated one (jwt, no header); rejects with `UnauthenticatedError` for a header
   * that is not a bearer token or a token that fails verification.
   */
  authenticate(input: AuthenticateInput): Promise<Caller>;
  stats(): AuthenticatorStats;
  /** Resolves once no JWKS fetch is in flight (tests, shutdown). */
  idle(): Promise<void>;
  /** Stops JWKS fetching and releases its connections. */
  close(): Promise<void>;
}

/** The authenticator for the `auth` section of the config. */
export function createAuthenticator(config: Config['auth'], options: AuthenticatorOptions): Authenticator {
  if (config.mode === 'none') {
    return {
      authenticate: ({ address }) => Promise.resolve(anonymousCaller(address)),
      stats: () => ({ mode: 'none', verifications: 0, cache: { verified: 0, refused: 0, hits: 0, refusedHits: 0 }, refusals: {} }),
      idle: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
  }
  return jwtAuthenticator(config, options);
}

type JwtAuthConfig = Extract<Config['auth'], { mode: 'jwt' }>;

function jwtAuthenticator(config: JwtAuthConfig, options: AuthenticatorOptions): Authenticator {
  const limits = { ...AUTH_DEFAULTS, ...options.limits };
  const now = options.now ?? Date.now;
  const { logger } = options;
  const cache = new TokenCache({ verifiedMax: limits.verifiedCacheMax, refusedMax: limits.refusedCacheMax, refusedTtlMs: limits.refusedTtlMs });
  const refusals: Partial<Record<UnauthenticatedReason, number>> = {};
  // Concurrent first sights of one token share one verification.
  const verifying = new Singleflight<string, Promise<Caller>>();
  let verifications = 0;
  // Bumped when the signing keys change: a verdict reached with the old keys is not kept.
  let keyGeneration = 0;
  let warnedUnexpected = false;

  let key: KeyLike | Uint8Array | JwksKeys['getKey'];
  let algorithms: string[];
  let jwks: JwksKeys | undefined;
  let agent: Agent | undefined;
  if (config.keys.kind === 'jwks') {
    let fetchJwks = options.fetchJwks;
    if (!fetchJwks) {
      agent = new Agent({ connections: 2, connect: { timeout: config.jwksTimeoutMs } });
      fetchJwks = undiciJwksFetcher(agent);
    }
    jwks = new JwksKeys({
      url: config.keys.url,
      fetch: fetchJwks,
      timeoutMs: config.jwksTimeoutMs,
      maxAgeMs: config.jwksMaxAgeMs,
      unknownKidCooldownMs: limits.unknownKidCooldownMs,
      retryAfterFailureMs: limits.jwksRetryAfterFailureMs,
      maxBytes: limits.jwksMaxBytes,
      now,
      logger,
      // Verdicts reached with keys that are gone (or were added) may no longer hold.
      onChange: () => {
        keyGeneration += 1;
        cache.clear();
      },
    });
    key = jwks.getKey;
    algorithms = [...JWKS_ALGORITHMS];
  } else {
    ({ key, algorithms } = staticKey(config.keys));
  }
  const toleranceMs = config.clockToleranceS * 1000;

  function verifyOptions(): JWTVerifyOptions {
    return {
      issuer: config.issuer,
      audience: config.audience,
      algorithms,
      clockTolerance: config.clockToleranceS,
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(now()),
    };
  }

  async function verify(token: string): Promise<JWTVerifyResult> {
    const verifyWith = verifyOptions();
    try {
      return typeof key === 'function' ? await jwtVerify(token, key, verifyWith) : await jwtVerify(token, key, verifyWith);
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // A token without `kid` and several keys that fit its `alg`: try each (jose's pattern).
      for await (const candidate of error as AsyncIterable<KeyLike>) {
        try {
          return await jwtVerify(token, candidate, verifyWith);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  async function verifyAndRemember(token: string, digest: string): Promise<Caller> {
    verifications += 1;
    const generation = keyGeneration;
    try {
      const { payload } = await verify(token);
      const caller = callerFromClaims(payload, config);
      if (generation === keyGeneration) cache.accept(digest, caller, caller.expiresAt! + toleranceMs);
      return caller;
    } catch (error) {
      const reason = refusalReason(error);
      if (reason === undefined) {
        // Not a verdict on the token: a key jose cannot use (an RSA key under 2048 bits in
        // the JWKS), or a bug. Refuse (fail closed) and say what broke, by class name only;
        // warn once, as every token would hit it again.
        const facts = { errorName: error instanceof Error ? error.name : typeof error };
        if (warnedUnexpected) logger.debug(facts, 'bearer token verification failed unexpectedly');
        else logger.warn(facts, 'bearer token verification failed unexpectedly (further occurrences are logged at debug)');
        warnedUnexpected = true;
      } else if (LASTING_REFUSALS.has(reason) && generation === keyGeneration) {
        cache.refuse(digest, reason, now());
      }
      throw refuse(reason ?? 'malformed token');
    }
  }

  function refuse(reason: UnauthenticatedReason): UnauthenticatedError {
    refusals[reason] = (refusals[reason] ?? 0) + 1;
    logger.debug({ reason }, 'bearer token refused');
    return new UnauthenticatedError(reason);
  }

  return {
    async authenticate({ authorization, address }) {
      if (authorization === undefined) return unauthenticatedCaller(address);
      let token: string;
      try {
        token = bearerToken(authorization);
      } catch (error) {
        throw refuse((error as UnauthenticatedError).reason);
      }
      const digest = tokenDigest(token);
      const verdict = cache.verdict(digest, now());
      if (verdict && 'caller' in verdict) return verdict.caller;
      if (verdict) {
        refusals[verdict.refused] = (refusals[verdict.refused] ?? 0) + 1;
        throw new UnauthenticatedError(verdict.refused);
      }
      return dedupe(verifying, digest, () => verifyAndRemember(token, digest));
    },
    stats() {
      return {
        mode: 'jwt',
        keySource: config.keys.kind,
        verifications,
        cache: { ...cache.sizes, hits: cache.hits, refusedHits: cache.refusedHits },
        refusals: { ...refusals },
        jwks: jwks?.stats(),
      };
    },
    idle: () => jwks?.idle() ?? Promise.resolve(),
    async close() {
      await jwks?.close();
      await agent?.destroy();
      cache.clear();
    },
  };
}
