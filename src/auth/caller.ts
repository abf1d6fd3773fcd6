import { ForbiddenError, UnauthenticatedError } from '../errors';

/** The scopes this gateway checks. A token carries the ones its holder was granted. */
export const SCOPES = {
  read: 'completions:read',
  stream: 'completions:stream',
  write: 'completions:write',
  admin: 'gateway:admin',
} as const;

export type Scope = (typeof SCOPES)[keyof typeof SCOPES];

/** The tenant of every caller whose token names none, and of every caller without a token. */
export const DEFAULT_TENANT = 'default';

/**
 * Who is calling, decided once per request (or WebSocket connection) and shared by every
 * resolver of it. Callers from verified tokens are cached and shared across requests, so
 * treat one as immutable.
 */
export interface Caller {
  /**
   * `token`: a verified bearer token; `unauthenticated`: AUTH_MODE=jwt and no credentials
   * (no scopes: protected fields answer UNAUTHENTICATED); `anonymous`: AUTH_MODE=none
   * (every scope).
   */
  readonly kind: 'token' | 'unauthenticated' | 'anonymous';
  /** The token's `sub`; the client address for the other kinds. */
  readonly subject: string;
  readonly tenant: string;
  readonly scopes: ReadonlySet<string>;
  /** When the token expires (ms since the epoch); only for `token`. */
  readonly expiresAt?: number;
}

const ALL_SCOPES: ReadonlySet<string> = new Set(Object.values(SCOPES));
const NO_SCOPES: ReadonlySet<string> = new Set();

/** The caller under AUTH_MODE=none: anyone who reaches the port may do everything. */
export function anonymousCaller(address: string): Caller {
  return Object.freeze({ kind: 'anonymous', subject: address, tenant: DEFAULT_TENANT, scopes: ALL_SCOPES });
}

/** The caller under AUTH_MODE=jwt who sent no credentials: public fields only. */
export function unauthenticatedCaller(address: string): Caller {
  return Object.freeze({ kind: 'unauthenticated', subject: address, tenant: DEFAULT_TENANT, scopes: NO_SCOPES });
}

export function hasScope(caller: Caller, scope: string): boolean {
  return caller.scopes.has(scope);
}

/**
 * Throws unless `caller` holds every scope in `scopes`: UNAUTHENTICATED for a caller who
 * sent no credentials (so a client knows to send a token rather than ask for a scope),
 * FORBIDDEN naming the missing scopes otherwise.
 */
export function requireScopes(caller: Caller, ...scopes: string[]): void {
  const missing = scopes.filter((scope) => !caller.scopes.has(scope));
  if (missing.length === 0) return;
  if (caller.kind === 'unauthenticated') throw new UnauthenticatedError('missing credentials');
  throw new ForbiddenError(missing);
}
