import { ErrorCode } from './codes';

/** Extra, client-safe facts attached to a public error (never secrets or raw bodies). */
export type SafeExtensions = Record<string, string | number | boolean | null | undefined>;

/**
 * Base of every error this service means to show a client. Anything else that reaches
 * the GraphQL layer is masked as INTERNAL_SERVER_ERROR (see `src/graphql/format-error.ts`).
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly extensions: SafeExtensions;

  constructor(code: ErrorCode, message: string, extensions: SafeExtensions = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.extensions = extensions;
  }
}

/** The client sent something this service will not forward; `field` names the input path. */
export class BadUserInputError extends GatewayError {
  constructor(message: string, field: string, extensions: SafeExtensions = {}) {
    super(ErrorCode.BAD_USER_INPUT, message, { field, ...extensions });
  }
}

/** What we know about one failed upstream exchange. */
export interface UpstreamErrorDetails {
  /** HTTP status DeepSeek answered with, when it answered at all. */
  status?: number;
  /** DeepSeek's `x-ds-trace-id`, for support tickets. */
  traceId?: string;
  /** Milliseconds from a `Retry-After` header, when present. */
  retryAfterMs?: number;
  /** Whether repeating the same call may succeed (429, 5xx, resets, timeouts). */
  retryable: boolean;
  /** Sanitised upstream message: only ever shown for request rejections (400/422). */
  upstreamMessage?: string;
  /** Fingerprint of the API key that was used, never the key. */
  keyFingerprint?: string;
  /** Number of attempts made before giving up (set by the retry policy). */
  attempts?: number;
}

/** A failed call to DeepSeek, already classified into a public code. */
export class UpstreamError extends GatewayError {
  readonly details: UpstreamErrorDetails;

  constructor(code: ErrorCode, message: string, details: UpstreamErrorDetails, options?: { cause?: unknown }) {
    super(
      code,
      message,
      {
        upstreamStatus: details.status,
        upstreamTraceId: details.traceId,
        attempts: details.attempts,
        retryAfterMs: details.retryAfterMs,
      },
      options,
    );
    this.details = details;
  }

  get retryable(): boolean {
    return this.details.retryable;
  }

  /** A copy with more facts (for example the attempt count once retries are done). */
  with(details: Partial<UpstreamErrorDetails>): UpstreamError {
    return new UpstreamError(this.code, this.message, { ...this.details, ...details }, { cause: this.cause });
  }
}

/** The local bulkhead queue is full: this replica refuses new upstream work for now. */
export class OverloadedError extends GatewayError {
  constructor(message = 'The gateway is at its upstream concurrency limit and its queue is full; retry shortly.') {
    super(ErrorCode.OVERLOADED, message);
  }
}

/** The limits a quota policy may set (QUOTAS_FILE); each names itself in `extensions.limit`. */
export type QuotaLimit =
  | 'requestsPerMinute'
  | 'upstreamCallsPerMinute'
  | 'tokensPerDay'
  | 'usdPerDay'
  | 'usdPerMonth'
  | 'maxConcurrentStreams';

/** Rate limits answer RATE_LIMITED; spend budgets BUDGET_EXCEEDED. */
const SPEND_BUDGETS: ReadonlySet<QuotaLimit> = new Set(['tokensPerDay', 'usdPerDay', 'usdPerMonth']);

/**
 * A quota refused work before it was done (src/quotas): `limit` names the policy's limit,
 * `retryAfterMs` when its window renews (or, for concurrent streams, a short wait).
 * `payer` is the hashed account the refusal belongs to (never shown): a caller who only
 * joined another caller's refused call is not refused by it (see src/batching/flights.ts).
 */
export class QuotaExceededError extends GatewayError {
  readonly limit: QuotaLimit;
  readonly retryAfterMs: number;
  readonly payer: string;

  constructor(limit: QuotaLimit, message: string, retryAfterMs: number, payer: string) {
    const code = SPEND_BUDGETS.has(limit) ? ErrorCode.BUDGET_EXCEEDED : ErrorCode.RATE_LIMITED;
    const wait = Math.max(0, Math.ceil(retryAfterMs));
    super(code, message, { limit, retryAfterMs: wait });
    this.limit = limit;
    this.retryAfterMs = wait;
    this.payer = payer;
  }

  /** Whole seconds for an HTTP `Retry-After` header (at least 1). */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

/** Thrown when code reaches a case the type system says cannot happen. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`Unreachable case: ${JSON.stringify(value)}`);
  }
}
