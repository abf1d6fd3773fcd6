import { Writable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type KeyLike } from 'jose';
import type { Config } from '../../src/config';
import { createLogger, type Logger } from '../../src/telemetry/logger';

export const ISSUER = 'https://issuer.test/';
export const AUDIENCE = 'deepseek-gateway';
/** 2030-01-01T00:00:00Z: the injected clock's start. */
export const T0 = Date.UTC(2030, 0, 1);
export const SECRET = new TextEncoder().encode('a-test-secret-of-more-than-thirty-two-bytes');

export type JwtAuthConfig = Extract<Config['auth'], { mode: 'jwt' }>;

export function jwtConfig(keys: JwtAuthConfig['keys'], overrides: Partial<JwtAuthConfig> = {}): JwtAuthConfig {
  return {
    mode: 'jwt',
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceS: 30,
    scopesClaim: 'scope',
    tenantClaim: 'tenant',
    jwksTimeoutMs: 300,
    jwksMaxAgeMs: 600_000,
    ...overrides,
  };
}

/** A clock the tests move by hand. */
export class Clock {
  ms = T0;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface MintOptions {
  alg?: string;
  kid?: string;
  /** Seconds since the epoch the token is issued at (default: the clock's T0). */
  iat?: number;
  ttlS?: number;
  nbf?: number;
  issuer?: string;
  audience?: string;
  subject?: string | null;
  /** Claims to add (or to override). */
  claims?: JWTPayload;
}

/** A signed token: `sub` user-1, scope read+stream, valid 1 h from T0 unless told otherwise. */
export async function mint(key: KeyLike | Uint8Array, options: MintOptions = {}): Promise<string> {
  const iat = options.iat ?? T0 / 1000;
  const jwt = new SignJWT({ scope: 'completions:read completions:stream', ...options.claims })
    .setProtectedHeader({ alg: options.alg ?? 'HS256', ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.ttlS ?? 3600));
  if (options.subject !== null) jwt.setSubject(options.subject ?? 'user-1');
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(key);
}

/** An ES256 key pair and its public JWK under `kid`. */
export async function signingKey(kid: string, alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<{ kid: string; alg: string; privateKey: KeyLike; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A logger writing JSON lines into `lines`, at debug, with the service's redaction. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      callback();
    },
  });
  return { logger: createLogger('debug', destination), lines };
}
