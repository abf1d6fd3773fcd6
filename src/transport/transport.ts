import type { Logger } from 'pino';
import type { Config } from '../config';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import { upstreamMetrics } from '../telemetry/metrics';
import { chain } from '../lib/chain';
import type { LightAbortController } from '../lib/abort';
import { attemptTelemetry } from './attempt-telemetry';
import { Breaker, breakerInterceptor } from './breaker';
import { Bulkhead, bulkheadInterceptor } from './bulkhead';
import { callTelemetry } from './call-telemetry';
import { deadlineInterceptor } from './deadline';
import { DEFAULT_RETRYABLE_STATUSES, TransportError, transportErrorType } from './errors';
import { createExchange } from './exchange';
import { KeyPool, keyPoolInterceptor } from './key-pool';
import { createUpstreamPool, type UpstreamPool } from './pool';
import { retryInterceptor } from './retry';
import { RetryBudget } from './retry-budget';
import { TransportCounters, type TransportStatus } from './status';
import { compose, type Dispatch, type ErrorType, type UpstreamHandler, type UpstreamRequest } from './types';

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
  | 'breakerFailureRate'
  | 'breakerWindowMs'
  | 'breakerMinCalls'
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
  logger: Logger;
  /** Response header with the upstream's trace id: on errors, spans and logs. */
  traceIdHeader?: string;
  /** Statuses worth another attempt (default: 429, 500, 502, 503, 504). */
  retryableStatuses?: ReadonlySet<number>;
  /**
   * How spans, metrics and logs name a failure (default: the TransportError's kind, ABORTED
   * for anything else). The provider passes the names its dashboards know.
   */
  errorType?: ErrorType;
  tuning?: TransportTuning;
  /** Tracer and meter for call and attempt spans and metrics (default: record nothing). */
  instruments?: Instruments;
}

/**
 * The resilient pooled transport: one undici pool and the policies around it, composed
 * outermost first as call telemetry → breaker → deadline → retry (+ budget) → bulkhead →
 * key pool → attempt telemetry → exchange. The breaker counts calls, the deadline bounds a
 * whole call, retries happen inside both, each attempt holds one concurrency slot and one
 * key, and every exchange is traced. Failures are `TransportError`s (or a caller's abort
 * reason); mapping them to public errors is the provider's business.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #upstream: UpstreamPool;
  readonly #keys: KeyPool;
  readonly #breaker: Breaker;
  readonly #bulkhead: Bulkhead;
  readonly #counters = new TransportCounters();
  readonly #inFlight = new Set<LightAbortController>();
  readonly #dispatch: Dispatch;
  #closed = false;

  constructor(options: TransportOptions) {
    const { settings, logger } = options;
    const errorType = options.errorType ?? transportErrorType;
    this.#settings = settings;
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
    this.#breaker = new Breaker({
      failureRate: settings.breakerFailureRate,
      windowMs: settings.breakerWindowMs,
      minCalls: settings.breakerMinCalls,
      cooldownMs: settings.breakerCooldownMs,
      logger,
    });
    this.#bulkhead = new Bulkhead(settings.maxConcurrency, settings.maxQueue);
    const { tracer, meter } = options.instruments ?? noopInstruments();
    const metrics = upstreamMetrics(meter);
    const displayUrl = this.#upstream.displayUrl;
    const budget = new RetryBudget({
      ratio: settings.retryBudget,
      windowMs: options.tuning?.retryBudgetWindowMs,
      minRetries: options.tuning?.retryBudgetMinRetries,
    });

    this.#dispatch = compose(
      createExchange({
        dispatcher: this.#upstream.pool,
        basePath: this.#upstream.basePath,
        traceIdHeader: options.traceIdHeader,
        retryableStatuses: options.retryableStatuses ?? DEFAULT_RETRYABLE_STATUSES,
        scrub: (text) => this.#keys.scrub(text),
        closed: () => this.#closed,
      }),
      callTelemetry({ tracer, metrics, displayUrl, errorType }),
      breakerInterceptor(this.#breaker, this.#counters),
      deadlineInterceptor({ timeoutMs: settings.timeoutMs, streamMaxMs: settings.streamMaxMs, calls: this.#inFlight }),
      retryInterceptor({
        maxRetries: settings.maxRetries,
        baseMs: settings.retryBaseMs,
        maxMs: settings.retryMaxMs,
        budget,
        counters: this.#counters,
        logger,
        errorType,
        random: options.tuning?.random,
      }),
      bulkheadInterceptor(this.#bulkhead, this.#counters),
      keyPoolInterceptor(this.#keys),
      attemptTelemetry({ tracer, metrics, logger, displayUrl, traceIdHeader: options.traceIdHeader, errorType }),
    );
  }

  /**
   * Makes one call; `handler.onResponse` reads the 2xx response into its value. For a
   * stream (`request.stream`) the handler may return while the body flows: the policies then
   * hold the call (slot, lifetime, spans) until the body closes, and a stream is never
   * retried once its response is in. Rejects with a `TransportError` or the caller's abort
   * reason.
   */
  request<T>(request: UpstreamRequest, handler: UpstreamHandler<T>): Promise<T> {
    this.#counters.calls += 1;
    if (this.#closed) return Promise.reject(new TransportError({ kind: 'closed' }));
    // A chain, not an async frame held for the whole call (see `chain`).
    return chain(
      () => this.#dispatch(request, handler),
      undefined,
      (error) => {
        // Neither a caller who left nor a shutdown is a failure of the upstream.
        const closed = error instanceof TransportError && error.kind === 'closed';
        if (!request.signal?.aborted && !closed) this.#counters.failures += 1;
        throw error;
      },
    );
  }

  status(): TransportStatus {
    const stats = this.#upstream.pool.stats;
    return {
      circuit: this.#breaker.state,
      probeInFlight: this.#breaker.probeInFlight,
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

  /** Fails new calls, aborts the ones in flight (queued and backing off included), and closes the pool's sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new TransportError({ kind: 'closed' });
    for (const controller of this.#inFlight) controller.abort(reason);
    await this.#upstream.pool.close();
  }
}
