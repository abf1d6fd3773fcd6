import type { Attributes, Context } from '@opentelemetry/api';
import type { Readable } from 'node:stream';
import type { UpstreamError } from '../errors';
import type { Deadline } from '../lib/abort';

/**
 * The shapes every transport wrapper shares. The transport knows HTTP and policies;
 * it knows nothing about DeepSeek's JSON. Turning a failed exchange into a public
 * `UpstreamError` is delegated to a `Classifier` supplied by the provider layer.
 */

export type HttpMethod = 'GET' | 'POST';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A 2xx response handed to `consume`, its body not read yet. */
export interface TransportResponse {
  statusCode: number;
  headers: ResponseHeaders;
  body: Readable;
}

/** Facts about one call, shared by all of its attempts. */
export interface CallStats {
  /** HTTP exchanges started so far (key rotations included). */
  attempts: number;
}

/**
 * One upstream call as it travels through the wrappers. Outer wrappers fill the optional
 * fields for the inner ones (the deadline, the attempt number, the key), always on a copy.
 */
export interface TransportRequest<T> {
  method: HttpMethod;
  /** Path below the base URL, e.g. `/chat/completions`. */
  path: string;
  /** Request headers without authorization (the key pool adds it). */
  headers: Record<string, string>;
  body?: string;
  /** Reads a 2xx response into the call's value; throw (ideally an `UpstreamError`) to fail the attempt. */
  consume(response: TransportResponse): Promise<T>;
  /**
   * true: `consume` resolves while the body still flows (SSE). The exchange then ends when
   * the body closes, and `bodySignal` (not `signal`) bounds the body.
   */
  streaming?: boolean;
  /** Aborts the call while it has no response yet (caller, deadline, shutdown). */
  signal?: AbortSignal;
  /** The caller's own signal, to tell a caller's abort from a deadline. */
  callerSignal?: AbortSignal;
  /** Streams only: bounds the body once the response arrived (caller and stream lifetime). */
  bodySignal?: AbortSignal;
  /** Set by the deadline wrapper: the end of the time budget for getting the response. */
  deadline?: Deadline;
  stats: CallStats;
  /** 1-based attempt number, set by the retry wrapper. */
  attempt?: number;
  /** Set by the retry wrapper on a repeated attempt: the error code that caused the retry. */
  retryReason?: string;
  /**
   * Parent of the call span when the caller gives it (else the active context); the tracing
   * wrapper then replaces it with the call span's context, the parent of the attempt spans.
   * Explicit, so it works without a context manager.
   */
  traceContext?: Context;
  /** Extra attributes for the call span, known before the call (no secrets, no text). */
  spanAttributes?: Attributes;
  /** Attributes for the call span from its value (e.g. token usage), when it succeeds. */
  describe?(value: T): Attributes;
  /** Set by the key pool: the fingerprint of the key this exchange uses. */
  keyFingerprint?: string;
  /**
   * Called exactly once when the HTTP exchange behind a *resolved* dispatch is over (body
   * read or destroyed). A rejected dispatch has already finished its exchange.
   */
  onExchangeEnd?: () => void;
}

/** One step of the pipeline: resolves with the consumed value or rejects. */
export type Dispatch = <T>(request: TransportRequest<T>) => Promise<T>;

/** A policy wrapped around a dispatch function (like undici's `Dispatcher.compose`). */
export type Interceptor = (next: Dispatch) => Dispatch;

/** What went wrong, in HTTP terms; the classifier turns it into a public error. */
export type TransportFailure =
  | {
      kind: 'status';
      status: number;
      headers: ResponseHeaders;
      /** Up to 64 KiB of the error body, with configured keys scrubbed. */
      body: string;
      retryAfterMs?: number;
      keyFingerprint?: string;
    }
  | { kind: 'network'; error: unknown; keyFingerprint?: string }
  | { kind: 'timeout'; phase: 'call' | 'stream'; timeoutMs: number; attempts: number }
  | { kind: 'circuit-open'; retryInMs: number }
  | { kind: 'no-key'; reason: 'unauthorized' | 'insufficient_balance' }
  | { kind: 'closed' };

export type Classifier = (failure: TransportFailure) => UpstreamError;

/** Composes interceptors around a dispatch: the first interceptor is the outermost. */
export function compose(dispatch: Dispatch, ...interceptors: Interceptor[]): Dispatch {
  return interceptors.reduceRight<Dispatch>((next, interceptor) => interceptor(next), dispatch);
}
