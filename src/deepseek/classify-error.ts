import { ErrorCode, UpstreamError, type UpstreamErrorDetails } from '../errors';
import { headerValue, type TransportFailure } from '../transport';
import { RETRYABLE_STATUSES, TRACE_ID_HEADER } from './provider';

const MAX_UPSTREAM_MESSAGE = 300;

/** Socket-level failures worth another attempt (Node errno and undici codes). */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

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

/** DeepSeek's `error.message` from an OpenAI-style error body, if there is one. */
function upstreamMessageOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body.trim());
    const message = (parsed as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof message !== 'string') return undefined;
    const sanitized = sanitizeUpstreamMessage(message);
    return sanitized.length > 0 ? sanitized : undefined;
  } catch {
    // Not JSON: a raw body never reaches a client.
    return undefined;
  }
}

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

export function isRetryableNetworkError(error: unknown): boolean {
  return errorCodes(error).some((code) => RETRYABLE_NETWORK_CODES.has(code) || code.startsWith('HPE_'));
}

function fromStatus(failure: Extract<TransportFailure, { kind: 'status' }>): UpstreamError {
  const { status, retryAfterMs, keyFingerprint } = failure;
  const base: UpstreamErrorDetails = {
    status,
    traceId: headerValue(failure.headers, TRACE_ID_HEADER),
    retryAfterMs,
    retryable: RETRYABLE_STATUSES.has(status),
    keyFingerprint,
  };
  if (status === 400 || status === 422) {
    const upstreamMessage = upstreamMessageOf(failure.body);
    const message = upstreamMessage
      ? `DeepSeek rejected the request: ${upstreamMessage}`
      : `DeepSeek rejected the request (HTTP ${status})`;
    return new UpstreamError(ErrorCode.UPSTREAM_REJECTED, message, { ...base, upstreamMessage });
  }
  if (status === 401 || status === 403) {
    return new UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, `DeepSeek refused the API key (HTTP ${status})`, base);
  }
  if (status === 402) {
    return new UpstreamError(
      ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE,
      'The DeepSeek account has insufficient balance (HTTP 402)',
      base,
    );
  }
  if (status === 429) {
    return new UpstreamError(ErrorCode.UPSTREAM_RATE_LIMITED, 'DeepSeek rate limit reached (HTTP 429)', base);
  }
  return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, `DeepSeek is unavailable (HTTP ${status})`, base);
}

/**
 * DeepSeek's error table: turns an HTTP-level failure from the transport into a public
 * `UpstreamError` with a short fixed message, the status, the `x-ds-trace-id` and whether
 * a retry may help. Raw bodies and keys never reach the message.
 */
export function classifyFailure(failure: TransportFailure): UpstreamError {
  switch (failure.kind) {
    case 'status':
      return fromStatus(failure);
    case 'network':
      return new UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        'DeepSeek is unavailable (connection failed)',
        { retryable: isRetryableNetworkError(failure.error), keyFingerprint: failure.keyFingerprint },
        { cause: failure.error },
      );
    case 'timeout':
      return new UpstreamError(
        ErrorCode.UPSTREAM_TIMEOUT,
        failure.phase === 'call'
          ? `DeepSeek did not answer within ${failure.timeoutMs} ms`
          : `DeepSeek's stream did not finish within ${failure.timeoutMs} ms`,
        { retryable: false, attempts: failure.attempts },
      );
    case 'circuit-open':
      return new UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        `DeepSeek is unavailable (circuit open after repeated failures; next probe in ${failure.retryInMs} ms)`,
        { retryable: false, attempts: 0 },
      );
    case 'no-key':
      return failure.reason === 'insufficient_balance'
        ? new UpstreamError(
            ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE,
            'No DeepSeek API key with balance is left',
            { retryable: false, attempts: 0 },
          )
        : new UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, 'No usable DeepSeek API key is left', {
            retryable: false,
            attempts: 0,
          });
    case 'closed':
      return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The DeepSeek client is closed', { retryable: false });
  }
}

/**
 * An error object inside a 200 body. DeepSeek commits 200 before a queued request is
 * scheduled (keep-alive lines), so a later failure can only ride in the body; its `type`
 * is all there is to classify it by.
 */
export function errorInBody(error: unknown, traceId?: string): UpstreamError {
  const { type, message } = (typeof error === 'object' && error !== null ? error : {}) as { type?: unknown; message?: unknown };
  const details = { status: 200, traceId, retryable: false };
  switch (type) {
    case 'invalid_request_error': {
      const upstreamMessage = typeof message === 'string' ? sanitizeUpstreamMessage(message) || undefined : undefined;
      return new UpstreamError(
        ErrorCode.UPSTREAM_REJECTED,
        upstreamMessage ? `DeepSeek rejected the request: ${upstreamMessage}` : 'DeepSeek rejected the request',
        { ...details, upstreamMessage },
      );
    }
    case 'authentication_error':
      return new UpstreamError(ErrorCode.UPSTREAM_AUTH_FAILED, 'DeepSeek refused the API key', details);
    case 'rate_limit_error':
      return new UpstreamError(ErrorCode.UPSTREAM_RATE_LIMITED, 'DeepSeek rate limit reached', { ...details, retryable: true });
    default:
      return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'DeepSeek reported an error in its response', {
        ...details,
        retryable: true,
      });
  }
}

/** A 2xx whose body is not what DeepSeek documents: retryable, and never shown raw. */
export function invalidResponse(reason: string, traceId?: string): UpstreamError {
  return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, `DeepSeek sent an unreadable response (${reason})`, {
    status: 200,
    traceId,
    retryable: true,
  });
}

/** A stream that ended before `[DONE]` or before a finish reason: never a silent success. */
export function streamTruncated(traceId?: string): UpstreamError {
  return new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'DeepSeek stream truncated before it finished', {
    status: 200,
    traceId,
    retryable: false,
  });
}
