import type { Attributes, Context } from '@opentelemetry/api';
import type { Readable } from 'node:stream';
import type { AbortSignalLike } from '../lib/abort';

/**
 * The transport's contract, after undici's dispatcher: a dispatch takes an immutable
 * request and a handler; interceptors wrap the dispatch and, where they care about a
 * response, the handler. The transport knows HTTP and its policies, nothing about
 * DeepSeek's JSON or the gateway's public error codes.
 */

export type HttpMethod = 'GET' | 'POST';

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** One upstream call as the client built it. Policies never change it; they pass copies on. */
export interface UpstreamRequest {
  readonly method: HttpMethod;
  /** Path below the base URL, e.g. `/chat/completions`. */
  readonly path: string;
  /** Request headers; never authorization (the key pool adds it to its copy). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /**
   * The one abort signal: the caller's. The deadline policy hands inner policies a copy
   * whose signal also fires at the deadline; nothing else replaces it.
   */
  readonly signal?: AbortSignalLike;
  /**
   * true: the handler returns while the body still flows (SSE). The call deadline then stops
   * at the response headers and the stream lifetime bounds the body; the exchange is over
   * when the body closes.
   */
  readonly stream: boolean;
  /**
   * Parent of the call span (default: the active context). The call-telemetry policy passes
   * on a copy with the call span's context, the parent of the attempt spans. Explicit, so it
   * works without a context manager.
   */
  readonly traceContext?: Context;
  /** Attributes for the call span known before the call (never secrets or prompt text). */
  readonly spanAttributes?: Attributes;

  // What outer policies tell inner ones, each in its own namespace, set on copies only.
  /** Set by the deadline policy: when the call's time is up (ms since epoch). */
  readonly deadline?: { readonly at: number };
  /** Set by the retry policy: the 1-based attempt and, from the second on, why it repeats. */
  readonly retry?: { readonly attempt: number; readonly reason?: string };
  /** Set by the key pool: the fingerprint of the key this exchange uses. */
  readonly key?: { readonly fingerprint: string };
}

/** A 2xx response whose status and headers are in; the body has not been read. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly body: Readable;
}

/**
 * What an interceptor changes when it passes a request on (`withRequest`): only the fields
 * in its own namespace, and the signal, headers and trace context it replaces.
 */
export type RequestChanges = Partial<Pick<UpstreamRequest, 'signal' | 'headers' | 'traceContext' | 'deadline' | 'retry' | 'key'>>;

/**
 * A copy of `request` with `changes`, for the next policy. Written field by field, not as
 * `{ ...request, signal }`: on Node 20's V8 (11.3) an object spread followed by more
 * properties costs about 30 times an object literal (465–590 ns against 13 ns) and gives
 * every copy a hidden class of its own, kept alive with it (fixed in V8 12, Node 22). Every
 * upstream call passes through five such copies. The mapped type makes a field added to
 * `UpstreamRequest` a compile error here until it is copied too.
 */
export function withRequest(request: UpstreamRequest, changes: RequestChanges): UpstreamRequest {
  const copy: { [K in keyof Required<UpstreamRequest>]: UpstreamRequest[K] } = {
    method: request.method,
    path: request.path,
    headers: changes.headers ?? request.headers,
    body: request.body,
    signal: changes.signal ?? request.signal,
    stream: request.stream,
    traceContext: changes.traceContext ?? request.traceContext,
    spanAttributes: request.spanAttributes,
    deadline: changes.deadline ?? request.deadline,
    retry: changes.retry ?? request.retry,
    key: changes.key ?? request.key,
  };
  return copy;
}

/** `headers` with one more (or a replaced) header; Object.assign, not a spread (see `withRequest`). */
export function withHeader(headers: Readonly<Record<string, string>>, name: string, value: string): Record<string, string> {
  const copy: Record<string, string> = Object.assign({}, headers);
  copy[name] = value;
  return copy;
}

/**
 * `handler` with some callbacks replaced (each replacement calls the original itself), for
 * the next policy; field by field for the reason `withRequest` gives.
 */
export function wrapHandler<T>(handler: UpstreamHandler<T>, changes: Partial<UpstreamHandler<T>>): UpstreamHandler<T> {
  const wrapped: { [K in keyof Required<UpstreamHandler<T>>]: UpstreamHandler<T>[K] } = {
    onExchange: changes.onExchange ?? handler.onExchange,
    onResponse: changes.onResponse ?? handler.onResponse,
    onResponseEnd: changes.onResponseEnd ?? handler.onResponseEnd,
    describe: changes.describe ?? handler.describe,
  };
  return wrapped;
}

/**
 * What a call does with its response, and the events of its exchanges. Interceptors that
 * care wrap it (`wrapHandler(handler, { onResponseEnd() {…} })`), always passing each
 * callback on.
 */
export interface UpstreamHandler<T> {
  /** An HTTP exchange of this call is being sent: once per attempt and per key tried. */
  onExchange?(): void;
  /**
   * Reads a 2xx response into the call's value. Throwing fails the attempt: a
   * `TransportError` is retried when it is `retryable`; anything else counts as a network
   * failure of the exchange.
   */
  onResponse(response: UpstreamResponse): Promise<T>;
  /**
   * The exchange whose response `onResponse` took is over: its body was read to the end,
   * or destroyed (`error`: why, when that was not its reader's choice). Called once, only
   * after `onResponse` resolved: before the dispatch resolves for a non-stream call, when
   * the body closes for a stream. A dispatch that rejects never calls it.
   */
  onResponseEnd?(error: Error | undefined): void;
  /** Attributes for the call span from the value (e.g. token usage). */
  describe?(value: T): Attributes;
}

/** One step of the pipeline: resolves with the handler's value or rejects. */
export type Dispatch = <T>(request: UpstreamRequest, handler: UpstreamHandler<T>) => Promise<T>;

/** A policy wrapped around a dispatch function (like undici's `Dispatcher.compose`). */
export type Interceptor = (next: Dispatch) => Dispatch;

/** How spans, metrics and logs name a failure (`error.type`, the call's `outcome`). */
export type ErrorType = (error: unknown) => string;

/** Composes interceptors around a dispatch: the first interceptor is the outermost. */
export function compose(dispatch: Dispatch, ...interceptors: Interceptor[]): Dispatch {
  return interceptors.reduceRight<Dispatch>((next, interceptor) => interceptor(next), dispatch);
}

export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
