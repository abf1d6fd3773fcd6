import type { Readable } from 'node:stream';
import type { Attributes, Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { GatewayError } from '../errors';
import { Deadline, DeadlineExceeded, abortReason, linkSignals } from '../lib/abort';
import { Breaker, breakerInterceptor } from './breaker';
import { Bulkhead, bulkheadInterceptor } from './bulkhead';
import { deadlineInterceptor } from './deadline';
import { createExchange } from './dispatch';
import { KeyPool, keyPoolInterceptor } from './key-pool';
import { createUpstreamPool, type UpstreamPool } from './pool';
import { retryInterceptor } from './retry';
import { RetryBudget } from './retry-budget';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import { upstreamMetrics } from '../telemetry/metrics';
import { TransportCounters, type TransportStatus } from './status';
import { tracingInterceptor } from './tracing';
import {
  compose,
  type Classifier,
  type Dispatch,
  type HttpMethod,
  type ResponseHeaders,
  type TransportResponse,
} from './types';

/** The config fields the transport reads. */
export type TransportSettings = Pick<
  Config['deepseek'],
  | 'apiKeys'
  | 'baseUrl'
  | 'timeoutMs'
  | 'headersTimeoutMs'
  | 'maxRetries'
  | 'retryBaseMs'
  | 'retryMaxMs'
  | 'retryBudget'
  | 'breakerThreshold'
  | 'breakerCooldownMs'
  | 'maxConcurrency'
  | 'maxQueue'
  | 'streamMaxMs'
  | 'keyRetryMs'
>;

/** Knobs that are not configuration but may be tuned by tests and tools. */
export interface TransportTuning {
  /** Sliding window of the retry budget (default 10 s). */
  retryBudgetWindowMs?: number;
  /** Retries always allowed per window (default 10). */
  retryBudgetMinRetries?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Idle keep-alive sockets are closed after this (default 30 s). */
  keepAliveTimeoutMs?: number;
}

export interface TransportOptions {
  settings: TransportSettings;
  /** Maps HTTP-level failures to public errors (the provider's error table). */
  classify: Classifier;
  logger: Logger;
  /** Response header with the upstream's trace id, for logs and spans. */
  traceIdHeader?: string;
  tuning?: TransportTuning;
  /** Tracer and meter for call and attempt spans and metrics (default: record nothing). */
  instruments?: Instruments;
}

/** One upstream call that reads a whole response. */
export interface CallSpec<T> {
  method: HttpMethod;
  path: string;
  /** Extra headers (content-type, accept); never authorization. */
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Parent of the call's spans (default: the active context). */
  traceContext?: Context;
  /** Attributes for the call span known before the call (never secrets or prompt text). */
  spanAttributes?: Attributes;
  /** Attributes for the call span from the consumed value (e.g. token usage). */
  describe?(value: T): Attributes;
  /** Reads the 2xx response; throwing an `UpstreamError` fails (and maybe retries) the attempt. */
  consume(response: TransportResponse): Promise<T>;
}

export type StreamSpec = Omit<CallSpec<never>, 'consume' | 'describe'>;

/** An established stream: status and headers are in, the body is still flowing. */
export interface OpenStream {
  statusCode: number;
  headers: ResponseHeaders;
  body: Readable;
  /**
   * Names an error met while reading the body: the caller's abort reason, UPSTREAM_TIMEOUT
   * past `streamMaxMs`, an `UpstreamError` as is, or UPSTREAM_UNAVAILABLE for socket errors.
   */
  settle(error: unknown): unknown;
  /** Ends the exchange: aborts the upstream request unless the body already ended. */
  close(): void;
}

/**
 * The resilient pooled transport: one undici pool and the policies around it, composed
 * outermost first as tracing → breaker → deadline → retry (+ budget) → bulkhead → key pool
 * → exchange. The breaker counts calls, the deadline bounds a whole call, retries happen
 * inside both, and each attempt holds one concurrency slot.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #classify: Classifier;
  readonly #upstream: UpstreamPool;
  readonly #keys: KeyPool;
  readonly #breaker: Breaker;
  readonly #bulkhead: Bulkhead;
  readonly #counters = new TransportCounters();
  readonly #inFlight = new Set<AbortController>();
  readonly #dispatch: Dispatch;
  #closed = false;

  constructor(options: TransportOptions) {
    const { settings, classify, logger } = options;
    this.#settings = settings;
    this.#classify = classify;
    this.#keys = new KeyPool(settings.apiKeys, {
      retryAfterMs: settings.keyRetryMs,
      onDisable: (key, reason) => logger.warn({ keyFingerprint: key.fingerprint, reason }, 'upstream API key disabled'),
      onEnable: (key) => logger.info({ keyFingerprint: key.fingerprint }, 'upstream API key back in rotation'),
    });
    this.#upstream = createUpstreamPool({
      baseUrl: settings.baseUrl,
      connections: settings.maxConcurrency,
      headersTimeoutMs: settings.headersTimeoutMs,
      bodyTimeoutMs: Math.max(settings.timeoutMs, settings.streamMaxMs),
      keepAliveTimeoutMs: options.tuning?.keepAliveTimeoutMs,
    });
    this.#breaker = new Breaker({ threshold: settings.breakerThreshold, cooldownMs: settings.breakerCooldownMs, logger });
    this.#bulkhead = new Bulkhead(settings.maxConcurrency, settings.maxQueue);
    const { tracer, meter } = options.instruments ?? noopInstruments();
    const metrics = upstreamMetrics(meter);
    const budget = new RetryBudget({
      ratio: settings.retryBudget,
      windowMs: options.tuning?.retryBudgetWindowMs,
      minRetries: options.tuning?.retryBudgetMinRetries,
    });

    this.#dispatch = compose(
      createExchange({
        dispatcher: this.#upstream.pool,
        basePath: this.#upstream.basePath,
        displayUrl: this.#upstream.displayUrl,
        classify,
        logger,
        tracer,
        traceIdHeader: options.traceIdHeader,
        scrub: (text) => this.#keys.scrub(text),
        inFlight: this.#inFlight,
        metrics,
      }),
      tracingInterceptor(tracer, this.#upstream.displayUrl, metrics),
      breakerInterceptor(this.#breaker, classify, this.#counters),
      deadlineInterceptor({ timeoutMs: settings.timeoutMs, classify }),
      retryInterceptor({
        maxRetries: settings.maxRetries,
        baseMs: settings.retryBaseMs,
        maxMs: settings.retryMaxMs,
        budget,
        counters: this.#counters,
        logger,
        random: options.tuning?.random,
      }),
      bulkheadInterceptor(this.#bulkhead, this.#counters),
      keyPoolInterceptor(this.#keys, classify),
    );
  }

  /** Makes one call and reads its whole response through `spec.consume`. */
  async request<T>(spec: CallSpec<T>): Promise<T> {
    return this.#run({ ...spec, streaming: false });
  }

  /**
   * Opens a stream: policies apply until the response status and headers are in; the body
   * is then bounded by the caller's signal and `streamMaxMs`, and never retried.
   */
  async openStream(spec: StreamSpec): Promise<OpenStream> {
    const lifetime = new Deadline(this.#settings.streamMaxMs);
    const linked = linkSignals(spec.signal, lifetime.signal);
    const end = (): void => {
      linked.dispose();
      lifetime.dispose();
    };
    const stats = { attempts: 0 };
    const settle = (error: unknown): unknown => {
      if (spec.signal?.aborted) return abortReason(spec.signal);
      if (lifetime.expired) {
        return this.#classify({
          kind: 'timeout',
          phase: 'stream',
          timeoutMs: this.#settings.streamMaxMs,
          attempts: stats.attempts,
        });
      }
      if (error instanceof GatewayError) return error;
      return this.#classify({ kind: 'network', error }).with({ attempts: stats.attempts });
    };
    let response: TransportResponse;
    try {
      response = await this.#run(
        {
          ...spec,
          streaming: true,
          signal: linked.signal,
          callerSignal: spec.signal,
          bodySignal: linked.signal,
          onExchangeEnd: end,
          consume: async (r) => r,
        },
        stats,
      );
    } catch (error) {
      end();
      // Only a stream lifetime shorter than the call deadline can end here unnamed.
      throw error instanceof DeadlineExceeded ? settle(error) : error;
    }
    const { body } = response;
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body,
      settle,
      close: () => {
        if (!body.destroyed) body.destroy();
      },
    };
  }

  status(): TransportStatus {
    const stats = this.#upstream.pool.stats;
    return {
      circuit: this.#breaker.state,
      inFlight: this.#bulkhead.inFlight,
      queued: this.#bulkhead.queued,
      maxConcurrency: this.#settings.maxConcurrency,
      maxQueue: this.#settings.maxQueue,
      connections: stats.connected,
      ...this.#counters,
      keys: this.#keys.snapshot(),
      breakerTransitions: this.#breaker.transitions,
    };
  }

  /** Fails new calls, aborts the ones in flight, and closes the pool's sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = this.#classify({ kind: 'closed' });
    for (const controller of this.#inFlight) controller.abort(reason);
    await this.#upstream.pool.close();
  }

  async #run<T>(
    spec: CallSpec<T> & Partial<{ streaming: boolean; callerSignal: AbortSignal; bodySignal: AbortSignal; onExchangeEnd: () => void }>,
    stats = { attempts: 0 },
  ): Promise<T> {
    this.#counters.calls += 1;
    if (this.#closed) {
      this.#counters.failures += 1;
      throw this.#classify({ kind: 'closed' });
    }
    try {
      return await this.#dispatch({
        ...spec,
        headers: { ...spec.headers },
        callerSignal: spec.callerSignal ?? spec.signal,
        stats,
      });
    } catch (error) {
      const callerSignal = spec.callerSignal ?? spec.signal;
      if (!callerSignal?.aborted) this.#counters.failures += 1;
      throw error;
    }
  }
}
