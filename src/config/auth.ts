import { readFileSync } from 'node:fs';
import type { RawEnv } from './schema';

/** Where tokens are verified against (exactly one, with AUTH_MODE=jwt). */
export type AuthKeySource =
  | { kind: 'jwks'; url: string }
  | { kind: 'public-key'; pem: string }
  | { kind: 'secret'; secret: Uint8Array };

/** Who may call (src/auth). */
export type AuthConfig =
  | { mode: 'none' }
  | {
      mode: 'jwt';
      keys: AuthKeySource;
      issuer: string;
      audience: string;
      clockToleranceS: number;
      /** Claim holding the scopes: a space-separated string (`scope`) or an array (`scp`, `permissions`). */
      scopesClaim: string;
      /** Claim holding the tenant. */
      tenantClaim: string;
      /** A JWKS fetch that takes longer fails (the last good set stays in use). */
      jwksTimeoutMs: number;
      /** How long a fetched JWKS is used before it is fetched again (an unknown `kid` refetches sooner). */
      jwksMaxAgeMs: number;
    };

/** Who sees whose stored answers. */
export type CacheScope = 'tenant' | 'global';

/**
 * AUTH_* and CACHE_SCOPE, checked together: production must say AUTH_MODE explicitly (so
 * nobody ships the service open by accident); `jwt` needs exactly one key source, an
 * issuer and an audience; a key file must be readable (its content is never echoed).
 */
export function authConfig(raw: RawEnv): { auth: AuthConfig; cacheScope: CacheScope } | { problems: string[] } {
  const problems: string[] = [];
  const mode = raw.AUTH_MODE ?? (raw.NODE_ENV === 'production' ? undefined : 'none');
  if (!mode) {
    problems.push('AUTH_MODE: required when NODE_ENV=production: jwt (verify bearer tokens) or none (anyone who reaches the port may call)');
    return { problems };
  }
  const cacheScope: CacheScope = raw.CACHE_SCOPE ?? (mode === 'jwt' ? 'tenant' : 'global');
  if (mode === 'none') return { auth: { mode: 'none' }, cacheScope };

  const sources = [raw.AUTH_JWKS_URL, raw.AUTH_PUBLIC_KEY_FILE, raw.AUTH_SECRET_FILE].filter((value) => value !== undefined);
  if (sources.length !== 1) {
    problems.push('AUTH_JWKS_URL: with AUTH_MODE=jwt, set exactly one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY_FILE, AUTH_SECRET_FILE');
  }
  if (!raw.AUTH_ISSUER) problems.push('AUTH_ISSUER: required with AUTH_MODE=jwt (the `iss` every token must carry)');
  if (!raw.AUTH_AUDIENCE) problems.push('AUTH_AUDIENCE: required with AUTH_MODE=jwt (the `aud` every token must carry)');

  let keys: AuthKeySource | undefined;
  if (raw.AUTH_JWKS_URL) keys = { kind: 'jwks', url: raw.AUTH_JWKS_URL };
  if (raw.AUTH_PUBLIC_KEY_FILE) {
    const pem = readText(raw.AUTH_PUBLIC_KEY_FILE, 'AUTH_PUBLIC_KEY_FILE', 'a PEM public key (SPKI, "-----BEGIN PUBLIC KEY-----")', problems);
    if (pem !== undefined && !pem.includes('-----BEGIN PUBLIC KEY-----')) {
      problems.push('AUTH_PUBLIC_KEY_FILE: expected a PEM public key (SPKI, "-----BEGIN PUBLIC KEY-----")');
    } else if (pem !== undefined) keys = { kind: 'public-key', pem };
  }
  if (raw.AUTH_SECRET_FILE) {
    const secret = readText(raw.AUTH_SECRET_FILE, 'AUTH_SECRET_FILE', 'a file holding a shared secret of at least 32 bytes', problems)?.trim();
    // HS256 with a short secret can be brute-forced offline from any token.
    if (secret !== undefined && Buffer.byteLength(secret) < 32) {
      problems.push('AUTH_SECRET_FILE: expected a shared secret of at least 32 bytes');
    } else if (secret !== undefined) keys = { kind: 'secret', secret: new TextEncoder().encode(secret) };
  }
  if (problems.length > 0 || !keys) return { problems };
  return {
    auth: {
      mode: 'jwt',
      keys,
      issuer: raw.AUTH_ISSUER!,
      audience: raw.AUTH_AUDIENCE!,
      clockToleranceS: raw.AUTH_CLOCK_TOLERANCE_S,
      scopesClaim: raw.AUTH_SCOPES_CLAIM,
      tenantClaim: raw.AUTH_TENANT_CLAIM,
      jwksTimeoutMs: raw.AUTH_JWKS_TIMEOUT_MS,
      jwksMaxAgeMs: raw.AUTH_JWKS_MAX_AGE_MS,
    },
    cacheScope,
  };
}

function readText(path: string, variable: string, form: string, problems: string[]): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    problems.push(`${variable}: expected a readable file holding ${form} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    return undefined;
  }
}
