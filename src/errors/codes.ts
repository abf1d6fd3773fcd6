/**
 * The public error-code enum: every GraphQL error this service returns carries one of
 * these in `extensions.code`. Frontends and the supergraph switch on them, so values are
 * never renamed.
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
  /** A spend budget (tokens or estimated USD per day or month, QUOTAS_FILE) would be crossed. */
  BUDGET_EXCEEDED: 'BUDGET_EXCEEDED',
  UPSTREAM_AUTH_FAILED: 'UPSTREAM_AUTH_FAILED',
  UPSTREAM_INSUFFICIENT_BALANCE: 'UPSTREAM_INSUFFICIENT_BALANCE',
  UPSTREAM_REJECTED: 'UPSTREAM_REJECTED',
  UPSTREAM_RATE_LIMITED: 'UPSTREAM_RATE_LIMITED',
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  OVERLOADED: 'OVERLOADED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  /**
   * The client went away before its answer was complete (nginx's 499). No client ever
   * reads it; it names that outcome in logs and metrics instead of an internal error.
   */
  CLIENT_CLOSED_REQUEST: 'CLIENT_CLOSED_REQUEST',
  // Apollo Server's own request-level codes, kept as Apollo clients know them.
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  BAD_REQUEST: 'BAD_REQUEST',
  PERSISTED_QUERY_NOT_FOUND: 'PERSISTED_QUERY_NOT_FOUND',
  PERSISTED_QUERY_NOT_SUPPORTED: 'PERSISTED_QUERY_NOT_SUPPORTED',
  /** A document outside the trusted-documents manifest (PERSISTED_DOCUMENTS_ONLY), as Apollo Router names it. */
  PERSISTED_QUERY_NOT_IN_LIST: 'PERSISTED_QUERY_NOT_IN_LIST',
  OPERATION_RESOLUTION_FAILURE: 'OPERATION_RESOLUTION_FAILURE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const PUBLIC_CODES = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && PUBLIC_CODES.has(value);
}
