/**
 * What went wrong, in transport terms. The provider side maps these to public errors; the
 * transport never sees those (nothing here knows GraphQL or the gateway's error codes).
 */
export type TransportFailure =
  /** The upstream answered with a status outside 2xx. */
  | {
      kind: 'status';
      status: number;
      /** Up to 64 KiB of the error body, configured keys scrubbed. */
      body: string;
      retryAfterMs?: number;
    }
  /** No answer: reset, refused, connect or header timeout, a socket error mid-body (`cause`). */
  | { kind: 'network' }
  /** The call deadline passed before its answer, or the stream lifetime before the stream ended. */
  | { kind: 'timeout'; phase: 'call' | 'stream'; timeoutMs: number }
  /**
   * The breaker is open, or half-open with its one probe call in flight (`probeInFlight`):
   * no request was sent.
   */
  | { kind: 'circuit-open'; retryInMs: number; probeInFlight?: boolean }
  /** Every concurrency slot is taken and the queue is full: no request was sent. */
  | { kind: 'overloaded' }
  /** The transport is closed (or closed while the call ran). */
  | { kind: 'closed' }
  /**
   * A 2xx whose body the handler could not use (its message says why). `body`: an error
   * object the upstream put in the body, as JSON, already stripped of anything secret.
   */
  | { kind: 'invalid-response'; status: number; body?: string };

export type TransportErrorKind = TransportFailure['kind'];

export interface TransportErrorOptions {
  /** Whether repeating the call may help (the retry policy's allow-list). Default false. */
  retryable?: boolean;
  /** HTTP exchanges the call made (set when the error leaves the call). */
  attempts?: number;
  /** Fingerprint of the key the failed exchange used, never the key. */
  keyFingerprint?: string;
  /** The upstream's trace id response header, when there was a response. */
  traceId?: string;
  message?: string;
  cause?: unknown;
}

function describe(failure: TransportFailure): string {
  switch (failure.kind) {
    case 'status':
      return `upstream answered HTTP ${failure.status}`;
    case 'network':
      return 'upstream connection failed';
    case 'timeout':
      return failure.phase === 'call'
        ? `upstream did not answer within ${failure.timeoutMs} ms`
        : `upstream stream did not finish within ${failure.timeoutMs} ms`;
    case 'circuit-open':
      return failure.probeInFlight
        ? 'upstream circuit half-open; its probe call is in flight'
        : `upstream circuit open; next probe in ${failure.retryInMs} ms`;
    case 'overloaded':
      return 'every upstream slot is taken and the queue is full';
    case 'closed':
      return 'the transport is closed';
    case 'invalid-response':
      return `upstream sent an unusable response (HTTP ${failure.status})`;
  }
}

/** A failed upstream call, as the transport sees it. Immutable: `with` makes a copy. */
export class TransportError extends Error {
  readonly failure: TransportFailure;
  readonly retryable: boolean;
  readonly attempts: number | undefined;
  readonly keyFingerprint: string | undefined;
  readonly traceId: string | undefined;

  constructor(failure: TransportFailure, options: TransportErrorOptions = {}) {
    super(options.message ?? describe(failure), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransportError';
    this.failure = failure;
    this.retryable = options.retryable ?? false;
    this.attempts = options.attempts;
    this.keyFingerprint = options.keyFingerprint;
    this.traceId = options.traceId;
  }

  get kind(): TransportErrorKind {
    return this.failure.kind;
  }

  /** The HTTP status of the answer, when there was one. */
  get status(): number | undefined {
    return this.failure.kind === 'status' || this.failure.kind === 'invalid-response' ? this.failure.status : undefined;
  }

  get retryAfterMs(): number | undefined {
    return this.failure.kind === 'status' ? this.failure.retryAfterMs : undefined;
  }

  /** A copy with more facts (the attempt count once the call is over, a retryability). */
  with(options: Pick<TransportErrorOptions, 'attempts' | 'retryable'>): TransportError {
    return new TransportError(this.failure, {
      retryable: this.retryable,
      attempts: this.attempts,
      keyFingerprint: this.keyFingerprint,
      traceId: this.traceId,
      message: this.message,
      cause: this.cause,
      ...options,
    });
  }

  /** A socket-level failure; retryable when its code says another attempt may get through. */
  static network(cause: unknown, keyFingerprint?: string): TransportError {
    return new TransportError({ kind: 'network' }, { retryable: isRetryableNetworkError(cause), keyFingerprint, cause });
  }
}

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

/** Whether a socket error (or one it wraps) is a reset, refusal, timeout or parse failure. */
export function isRetryableNetworkError(error: unknown): boolean {
  return errorCodes(error).some((code) => RETRYABLE_NETWORK_CODES.has(code) || code.startsWith('HPE_'));
}

/**
 * Statuses a call is repeated after when the provider names none: undici's RetryHandler
 * default (429 and the gateway-ish 5xx).
 */
export const DEFAULT_RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/** How telemetry names a failure when the provider gives no names: the kind, or ABORTED. */
export function transportErrorType(error: unknown): string {
  return error instanceof TransportError ? error.kind : 'ABORTED';
}
