import { ErrorCode, OverloadedError, UpstreamError, type UpstreamErrorDetails } from '../errors';
import { abortReason, type AbortSignalLike } from '../lib/abort';
import { TransportError, type TransportFailure } from '../transport';

/**
 * DeepSeek's error table, the one place a transport failure becomes a public error. The
 * transport speaks `TransportError` (status, network, timeout, …); this file turns one into
 * an `UpstreamError` with a public code, a short fixed message and client-safe details, or
 * an `OverloadedError`. It also builds the `invalid-response` errors the DeepSeek readers
 * throw for a 2xx they cannot use. Raw bodies and keys never reach a message.
 */

const MAX_UPSTREAM_MESSAGE = 300;

/**
 * Makes an upstream message safe to show: anything key-like (`sk-…`, `****1234`, bearer
 * tokens) is removed, control characters dropped, and the text cut to 300 characters.
 */
export function sanitizeUpstreamMessage(text: string): string {
  const cleaned = text
    .replace(/sk-[A-Za-z0-9._-]+/g, '[redacted]')
    .replace(/\*{2,}[A-Za-z0-9._-]*/g, '[redacted]')
    .replace(/Bearer\s+\S+/gi, 'Bearer [redacted]')
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.length > MAX_UPSTREAM_MESSAGE ? `${cleaned.slice(0, MAX_UPSTREAM_MESSAGE - 1)}…` : cleaned;
}

/** The `error` object of an OpenAI-style error body, if the body is one. */
function errorObjectOf(body: string): { type?: unknown; message?: unknown } | undefined {
  try {
    const error: unknown = (JSON.parse(body.trim()) as { error?: unknown } | null)?.error;
    return typeof error === 'object' && error !== null ? error : undefined;
  } catch {
    // Not JSON: a raw body never reaches a client.
    return undefined;
  }
}

/** DeepSeek's `error.message`, sanitised, when there is a non-empty one. */
function upstreamMessageOf(error: { message?: unknown } | undefined): string | undefined {
  if (typeof error?.message !== 'string') return undefined;
  const sanitized = sanitizeUpstreamMessage(error.message);
  return sanitized.length > 0 ? sanitized : undefined;
}

function rejected(status: number | undefined, upstreamMessage: string | undefined, details: UpstreamErrorDetails): UpstreamError {
  const message = upstreamMessage
    ? `DeepSeek rejected the request: ${upstreamMessage}`
    : `DeepSeek rejected the request${status === 200 ? '' : ` (HTTP ${status})`}`;
  return new UpstreamError(ErrorCode.UPSTREAM_REJECTED, message, { ...details, upstreamMessage });
}

function fromStatus(failure: Extract<TransportFailure, { kind: 'status' }>, details: UpstreamErrorDetails): UpstreamError {
  const { status } = failure;
  if (status === 400 || status === 422) return rejected(status, upstreamMessageOf(errorObjectOf(failure.body)), details);
  if (status === 401 || status === 403) {
    return new UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, `DeepSeek refused the API key (HTTP ${status})`, details);
  }
  if (status === 402) {
    return new UpstreamError(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE, 'The DeepSeek account has insufficient balance (HTTP 402)', details);
  }
  if (status === 429) return new UpstreamError(ErrorCode.UPSTREAM_RATE_LIMITED, 'DeepSeek rate limit reached (HTTP 429)', details);
  return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, `DeepSeek is unavailable (HTTP ${status})`, details);
}

/**
 * A 2xx the client could not use. DeepSeek commits 200 before a queued request is scheduled
 * (keep-alive lines), so a later failure can only ride in the body; its `type` is all there
 * is to classify it by. Without an error object it is an unreadable answer.
 */
function fromUnusableAnswer(failure: Extract<TransportFailure, { kind: 'invalid-response' }>, error: TransportError): UpstreamError {
  const details: UpstreamErrorDetails = { status: failure.status, traceId: error.traceId, retryable: error.retryable, attempts: error.attempts };
  if (failure.body === undefined) return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, error.message, details);
  const inBody = errorObjectOf(failure.body);
  switch (inBody?.type) {
    case 'invalid_request_error':
      return rejected(failure.status, upstreamMessageOf(inBody), details);
    case 'authentication_error':
      return new UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, 'DeepSeek refused the API key', details);
    case 'rate_limit_error':
      return new UpstreamError(ErrorCode.UPSTREAM_RATE_LIMITED, 'DeepSeek rate limit reached', details);
    default:
      return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'DeepSeek reported an error in its response', details);
  }
}

/**
 * The public error for a transport failure:
 *
 * | transport                         | public code                                      |
 * |-----------------------------------|--------------------------------------------------|
 * | status 400, 422                   | UPSTREAM_REJECTED (DeepSeek's message, sanitised) |
 * | status 401, 403                   | UPSTREAM_AUTH_FAILED                             |
 * | status 402                        | UPSTREAM_INSUFFICIENT_BALANCE                    |
 * | status 429                        | UPSTREAM_RATE_LIMITED                            |
 * | other statuses, network, closed   | UPSTREAM_UNAVAILABLE                             |
 * | circuit-open                      | UPSTREAM_UNAVAILABLE (next probe, or probe running) |
 * | timeout (call or stream)          | UPSTREAM_TIMEOUT                                 |
 * | overloaded                        | OVERLOADED                                       |
 * | invalid-response                  | by the error object in the body, else UNAVAILABLE |
 */
export function toGatewayError(error: TransportError): UpstreamError | OverloadedError {
  const { failure, attempts } = error;
  switch (failure.kind) {
    case 'status':
      return fromStatus(failure, {
        status: failure.status,
        traceId: error.traceId,
        retryAfterMs: failure.retryAfterMs,
        retryable: error.retryable,
        keyFingerprint: error.keyFingerprint,
        attempts,
      });
    case 'network':
      return new UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        'DeepSeek is unavailable (connection failed)',
        { retryable: error.retryable, keyFingerprint: error.keyFingerprint, attempts },
        { cause: error.cause },
      );
    case 'timeout':
      return new UpstreamError(
        ErrorCode.UPSTREAM_TIMEOUT,
        failure.phase === 'call'
          ? `DeepSeek did not answer within ${failure.timeoutMs} ms`
          : `DeepSeek's stream did not finish within ${failure.timeoutMs} ms`,
        { retryable: false, attempts },
      );
    case 'circuit-open':
      return new UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        failure.probeInFlight
          ? 'DeepSeek is unavailable (circuit open after repeated failures; a probe call is testing it now)'
          : `DeepSeek is unavailable (circuit open after repeated failures; next probe in ${failure.retryInMs} ms)`,
        { retryable: false, attempts: attempts ?? 0 },
      );
    case 'overloaded':
      return new OverloadedError();
    case 'closed':
      return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The DeepSeek client is closed', { retryable: false, attempts });
    case 'invalid-response':
      return fromUnusableAnswer(failure, error);
  }
}

/** What a client call rejects with: a transport failure as its public error, a caller's abort as is. */
export function publicError(error: unknown): unknown {
  return error instanceof TransportError ? toGatewayError(error) : error;
}

/** How spans, metrics and logs name a failure: its public code, or ABORTED for an abort. */
export function errorTypeOf(error: unknown): string {
  return error instanceof TransportError ? toGatewayError(error).code : 'ABORTED';
}

/**
 * Names an error met while reading a stream's body: the caller's abort as its reason; the
 * stream lifetime's timeout and socket failures with the call's attempt count; a problem the
 * client found in the stream (never retried) as it is.
 */
export function streamBodyFailure(error: unknown, signal: AbortSignalLike | undefined, attempts: number): Error {
  if (signal?.aborted) return abortReason(signal);
  if (!(error instanceof TransportError)) return TransportError.network(error).with({ attempts });
  return error.kind === 'timeout' ? error.with({ attempts }) : error;
}

// ---------------------------------------------------------------------------- 2xx the client cannot use

/** A 2xx whose body is not what DeepSeek documents: retryable, and never shown raw. */
export function invalidResponse(reason: string, traceId?: string): TransportError {
  return new TransportError(
    { kind: 'invalid-response', status: 200 },
    { retryable: true, traceId, message: `DeepSeek sent an unreadable response (${reason})` },
  );
}

/**
 * An error object inside a 200 body. Retryable unless it is a rejection or a refused key,
 * and never once a stream has started (`midStream`). Only its type and sanitised message
 * are kept.
 */
export function errorInBody(error: unknown, traceId?: string, options: { midStream?: boolean } = {}): TransportError {
  const { type, message } = (typeof error === 'object' && error !== null ? error : {}) as { type?: unknown; message?: unknown };
  const retryable = !options.midStream && type !== 'invalid_request_error' && type !== 'authentication_error';
  const body = JSON.stringify({
    error: { type: typeof type === 'string' ? type : undefined, message: upstreamMessageOf({ message }) },
  });
  return new TransportError(
    { kind: 'invalid-response', status: 200, body },
    { retryable, traceId, message: 'DeepSeek reported an error in its response' },
  );
}

/** A stream event that is not a chunk DeepSeek documents: never retried mid-stream. */
export function badStreamEvent(reason: string, traceId?: string): TransportError {
  return new TransportError(
    { kind: 'invalid-response', status: 200 },
    { retryable: false, traceId, message: `DeepSeek sent an unreadable stream event (${reason})` },
  );
}

/** A stream that ended before `[DONE]` or before a finish reason: never a silent success. */
export function streamTruncated(traceId?: string): TransportError {
  return new TransportError(
    { kind: 'invalid-response', status: 200 },
    { retryable: false, traceId, message: 'DeepSeek stream truncated before it finished' },
  );
}
