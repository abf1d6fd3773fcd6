import { UnauthenticatedError } from '../errors';

/** Longest token accepted (8 KiB): far above any real JWT, and bounds the work on a refusal. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * The token of an `Authorization: Bearer <token>` header. A header of another scheme or
 * shape is refused, never ignored: a client that sent credentials meant them to count.
 */
export function bearerToken(authorization: string): string {
  // Checked before the pattern, so an oversized header costs no regex work.
  if (authorization.length > MAX_TOKEN_LENGTH + 'Bearer '.length + 16) throw new UnauthenticatedError('token too large');
  const token = BEARER.exec(authorization.trim())?.[1];
  if (token === undefined) throw new UnauthenticatedError('malformed authorization header');
  if (token.length > MAX_TOKEN_LENGTH) throw new UnauthenticatedError('token too large');
  return token;
}
