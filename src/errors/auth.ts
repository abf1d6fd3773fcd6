import { ErrorCode } from './codes';
import { GatewayError } from './errors';

/**
 * Why a caller's credentials were refused: short, fixed phrases a client may see (and the
 * `error_description` of the WWW-Authenticate challenge). Never a claim value or any part
 * of a token, so none can leak through an error message, a log line or a metric label.
 */
export type UnauthenticatedReason =
  | 'missing credentials'
  | 'malformed authorization header'
  | 'token too large'
  | 'malformed token'
  | 'algorithm not allowed'
  | 'bad signature'
  | 'expired'
  | 'not yet valid'
  | 'wrong issuer'
  | 'wrong audience'
  | 'missing claim'
  | 'malformed tenant claim'
  | 'malformed scopes claim'
  | 'unknown signing key'
  | 'signing keys unavailable';

/**
 * The caller is not authenticated: no credentials where they are required, or credentials
 * that were refused. HTTP 401 with `wwwAuthenticate` as the WWW-Authenticate header
 * (RFC 6750 §3).
 */
export class UnauthenticatedError extends GatewayError {
  readonly httpStatus = 401;
  readonly reason: UnauthenticatedReason;
  /** The RFC 6750 challenge: no error code when credentials were simply missing (§3.1). */
  readonly wwwAuthenticate: string;

  constructor(reason: UnauthenticatedReason) {
    super(
      ErrorCode.UNAUTHENTICATED,
      reason === 'missing credentials' ? 'Authentication required: send Authorization: Bearer <token>.' : `Invalid credentials: ${reason}.`,
      { reason },
    );
    this.reason = reason;
    this.wwwAuthenticate =
      reason === 'missing credentials'
        ? 'Bearer'
        : `Bearer error="${reason === 'malformed authorization header' ? 'invalid_request' : 'invalid_token'}", error_description="${reason}"`;
  }
}

/**
 * The caller is authenticated but lacks a scope the operation needs. HTTP 403 with an
 * RFC 6750 `insufficient_scope` challenge. `extensions.requiredScopes` is the missing
 * scopes, space-separated as OAuth writes scope lists (extensions hold scalars only).
 */
export class ForbiddenError extends GatewayError {
  readonly httpStatus = 403;
  readonly requiredScopes: readonly string[];
  readonly wwwAuthenticate: string;

  constructor(requiredScopes: readonly string[], message = `Missing scope: ${requiredScopes.join(' ')}.`) {
    const scopes = requiredScopes.join(' ');
    super(ErrorCode.FORBIDDEN, message, { requiredScopes: scopes });
    this.requiredScopes = [...requiredScopes];
    this.wwwAuthenticate = `Bearer error="insufficient_scope", scope="${scopes}"`;
  }
}
