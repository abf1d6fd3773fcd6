import type { JWTPayload } from 'jose';
import { UnauthenticatedError } from '../errors';
import { DEFAULT_TENANT, type Caller } from './caller';

/** A tenant names a cache partition and appears in logs and metrics: keep it short and plain. */
export const TENANT_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** More scopes than any real grant; bounds the work and memory one token can cause. */
const MAX_SCOPES = 256;

export interface ClaimNames {
  /** A space-separated string (`scope`) or an array of strings (`scp`, `permissions`). */
  scopesClaim: string;
  tenantClaim: string;
}

/**
 * The caller a verified token describes. jose has already checked the signature, `iss`,
 * `aud`, `exp` and `nbf`; this checks the claims the gateway reads itself.
 */
export function callerFromClaims(payload: JWTPayload, names: ClaimNames): Caller {
  const { sub, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0) throw new UnauthenticatedError('missing claim');
  if (typeof exp !== 'number') throw new UnauthenticatedError('missing claim');
  return Object.freeze({
    kind: 'token',
    subject: sub,
    tenant: tenantOf(payload[names.tenantClaim]),
    scopes: scopesOf(payload[names.scopesClaim]),
    expiresAt: exp * 1000,
  });
}

function tenantOf(value: unknown): string {
  if (value === undefined) return DEFAULT_TENANT;
  if (typeof value !== 'string' || !TENANT_PATTERN.test(value)) throw new UnauthenticatedError('malformed tenant claim');
  return value;
}

function scopesOf(value: unknown): ReadonlySet<string> {
  if (value === undefined) return new Set();
  const scopes = typeof value === 'string' ? value.split(' ') : value;
  if (!Array.isArray(scopes) || scopes.length > MAX_SCOPES || !scopes.every((scope) => typeof scope === 'string')) {
    throw new UnauthenticatedError('malformed scopes claim');
  }
  // `split(' ')` leaves empty strings for doubled spaces; they name no scope.
  return new Set((scopes as string[]).filter((scope) => scope.length > 0));
}
