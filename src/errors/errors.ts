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

/** Thrown when code reaches a case the type system says cannot happen. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`Unreachable case: ${JSON.stringify(value)}`);
  }
}
