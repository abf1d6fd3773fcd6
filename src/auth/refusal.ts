import { errors } from 'jose';
import { UnauthenticatedError, type UnauthenticatedReason } from '../errors';

/**
 * The reason a verification failure gives the client, from jose's error classes (their
 * messages are never passed on). `undefined`: not a verification outcome at all (a bug
 * or a key jose cannot use), which the caller reports separately.
 */
export function refusalReason(error: unknown): UnauthenticatedReason | undefined {
  if (error instanceof UnauthenticatedError) return error.reason;
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return 'missing claim';
    if (error.claim === 'iss') return 'wrong issuer';
    if (error.claim === 'aud') return 'wrong audience';
    if (error.claim === 'nbf' && error.reason === 'check_failed') return 'not yet valid';
    return 'malformed token';
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSInvalid || error instanceof errors.JWKInvalid) {
    return 'unknown signing key';
  }
  if (error instanceof errors.JOSEError) return 'malformed token';
  return undefined;
}

/**
 * Refusals that hold for as long as the token exists, so remembering them is safe. The
 * others depend on the time ('not yet valid') or on the key server, which may answer
 * differently a moment later.
 */
export const LASTING_REFUSALS: ReadonlySet<UnauthenticatedReason> = new Set<UnauthenticatedReason>([
  'malformed token',
  'algorithm not allowed',
  'bad signature',
  'expired',
  'wrong issuer',
  'wrong audience',
  'missing claim',
  'malformed tenant claim',
  'malformed scopes claim',
]);
