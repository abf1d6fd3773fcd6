export { SCOPES, DEFAULT_TENANT, anonymousCaller, unauthenticatedCaller, hasScope, requireScopes, type Caller, type Scope } from './caller';
export {
  createAuthenticator,
  AUTH_DEFAULTS,
  type Authenticator,
  type AuthenticateInput,
  type AuthenticatorOptions,
  type AuthenticatorStats,
  type AuthLimits,
} from './authenticator';
export { MAX_TOKEN_LENGTH } from './bearer';
export { TENANT_PATTERN } from './claims';
export type { FetchJwks, FetchJwksOptions } from './jwks-fetch';
export type { JwksStats } from './jwks-keys';
