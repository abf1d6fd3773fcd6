import { metrics, ValueType, type Attributes, type BatchObservableResult, type Meter, type Observable } from '@opentelemetry/api';
import type { PriceTable } from '../config';
import { estimateCostUsd, type TokenUsage } from './cost';

/**
 * Every instrument the gateway records, defined in this one file. Layers get small typed
 * recorders from the factories below, built from the GLOBAL meter provider at the time the
 * factory runs: `startTelemetry` (src/telemetry/sdk.ts) must run before the gateway is
 * built, or the recorders are no-ops for good (the metrics API has no proxy provider).
 * Without an SDK every recorder is a no-op costing one call.
 *
 * Names follow the OpenTelemetry semantic conventions where one exists
 * (`http.server.request.duration`, `http.client.request.duration`,
 * `gen_ai.client.token.usage`); the gateway's own are under `gateway.*` and `graphql.*`.
 * Prometheus sees dots as underscores and counters with a `_total` suffix.
 */

/** Tracer and meter name of the gateway's instrumentation. */
export const INSTRUMENTATION_SCOPE = 'deepseek-gateway';

function defaultMeter(): Meter {
  return metrics.getMeter(INSTRUMENTATION_SCOPE);
}

/** Seconds: from a sub-millisecond cache hit to a long thinking-mode completion. */
const SERVER_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const UPSTREAM_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 600];
/** The buckets the GenAI semantic conventions advise for token counts. */
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const BATCH_SIZES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

// ---------------------------------------------------------------------------- HTTP server

export interface HttpServerMetrics {
  /** One finished HTTP request; `route` is the matched route template (absent for a 404). */
  request(figures: { method: string; route: string | undefined; status: number; seconds: number }): void;
}

export function httpServerMetrics(meter: Meter = defaultMeter()): HttpServerMetrics {
  const duration = meter.createHistogram('http.server.request.duration', {
    description: 'Duration of HTTP server requests.',
    unit: 's',
    advice: { explicitBucketBoundaries: SERVER_SECONDS },
  });
  return {
    request({ method, route, status, seconds }) {
      const attributes: Attributes = { 'http.request.method': method, 'http.response.status_code': status };
      if (route) attributes['http.route'] = route;
      duration.record(seconds, attributes);
    },
  };
}

// ---------------------------------------------------------------------------- GraphQL

/** Operation names come from clients: past this many distinct names, new ones are `(other)`. */
const MAX_OPERATION_NAMES = 200;

export interface GraphQLOperationFigures {
  /** `query`, `mutation`, `subscription`, or undefined when the document did not resolve. */
  type: string | undefined;
  /** undefined for an anonymous operation. */
  name: string | undefined;
  seconds: number;
  /** `extensions.code` of each error in the response (empty when it succeeded). */
  errorCodes: readonly string[];
}

export interface GraphQLMetrics {
  operation(figures: GraphQLOperationFigures): void;
}

export function graphqlMetrics(meter: Meter = defaultMeter()): GraphQLMetrics {
  const requests = meter.createCounter('graphql.server.requests', {
    description: 'GraphQL operations answered, by operation and outcome (ok, or error when the response has any error).',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  const errors = meter.createCounter('graphql.server.errors', {
    description: 'GraphQL errors in responses, by operation and error code (extensions.code).',
    unit: '{error}',
    valueType: ValueType.INT,
  });
  const duration = meter.createHistogram('graphql.server.operation.duration', {
    description: 'Time from the start of a GraphQL request to its response, by operation and outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: SERVER_SECONDS },
  });
  // Owned by this instance: bounds the label values a client can create.
  const names = new Set<string>();
  const boundedName = (name: string | undefined): string => {
    if (!name) return '';
    if (names.has(name)) return name;
    if (names.size >= MAX_OPERATION_NAMES) return '(other)';
    names.add(name);
    return name;
  };
  return {
    operation({ type, name, seconds, errorCodes }) {
      const operationType = type ?? '';
      const operationName = boundedName(name);
      const attributes: Attributes = {
        'graphql.operation.type': operationType,
        'graphql.operation.name': operationName,
        outcome: errorCodes.length === 0 ? 'ok' : 'error',
      };
      requests.add(1, attributes);
      duration.record(seconds, attributes);
      for (const code of errorCodes) {
        errors.add(1, { 'graphql.operation.type': operationType, 'graphql.operation.name': operationName, 'error.type': code });
      }
    },
  };
}

// ---------------------------------------------------------------------------- upstream

export interface UpstreamCallFigures {
  method: string;
  /** Path below the base URL, e.g. `/chat/completions` (a fixed set: low cardinality). */
  path: string;
  /** `ok`, a public error code (`UPSTREAM_TIMEOUT`, `OVERLOADED`…), or `ABORTED`. */
  outcome: string;
  seconds: number;
}

export interface UpstreamAttemptFigures {
  method: string;
  path: string;
  serverAddress: string;
  serverPort: number | undefined;
  /** Absent when no response came (reset, timeout, abort). */
  status: number | undefined;
  /** A public error code when the attempt failed. */
  errorType: string | undefined;
  seconds: number;
}

export interface UpstreamMetrics {
  /** One whole call: every attempt, backoff and queue wait included. */
  call(figures: UpstreamCallFigures): void;
  /** One HTTP exchange (attempt). */
  attempt(figures: UpstreamAttemptFigures): void;
}

export function upstreamMetrics(meter: Meter = defaultMeter()): UpstreamMetrics {
  const calls = meter.createHistogram('gateway.upstream.call.duration', {
    description: 'Duration of upstream (DeepSeek) calls including retries and waits, by path and outcome (ok or error code).',
    unit: 's',
    advice: { explicitBucketBoundaries: UPSTREAM_SECONDS },
  });
  const attempts = meter.createHistogram('http.client.request.duration', {
    description: 'Duration of each HTTP exchange with DeepSeek (one per attempt), by status or error.',
    unit: 's',
    advice: { explicitBucketBoundaries: UPSTREAM_SECONDS },
  });
  return {
    call({ method, path, outcome, seconds }) {
      calls.record(seconds, { 'http.request.method': method, 'url.path': path, outcome });
    },
    attempt({ method, path, serverAddress, serverPort, status, errorType, seconds }) {
      const attributes: Attributes = { 'http.request.method': method, 'url.path': path, 'server.address': serverAddress };
      if (serverPort !== undefined) attributes['server.port'] = serverPort;
      if (status !== undefined) attributes['http.response.status_code'] = status;
      if (errorType) attributes['error.type'] = errorType;
      attempts.record(seconds, attributes);
    },
  };
}

// ---------------------------------------------------------------------------- tokens and cost

export interface UsageFigures {
  /** GenAI operation: `chat` or `text_completion` (FIM). */
  operation: 'chat' | 'text_completion';
  /** The model DeepSeek answered with (billing follows it). */
  model: string;
  usage: TokenUsage;
  at?: Date;
}

export interface UsageMetrics {
  /** One completed upstream completion (cache hits of the gateway's own cache never get here). */
  record(figures: UsageFigures): void;
}

export function usageMetrics(prices: PriceTable, meter: Meter = defaultMeter()): UsageMetrics {
  const tokenUsage = meter.createHistogram('gen_ai.client.token.usage', {
    description: 'Tokens per DeepSeek completion, input and output (GenAI semantic conventions).',
    unit: '{token}',
    valueType: ValueType.INT,
    advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
  });
  const tokens = meter.createCounter('gateway.upstream.tokens', {
    description: 'Tokens billed by DeepSeek, by model and type (prompt, completion, cache_hit, cache_miss).',
    unit: '{token}',
    valueType: ValueType.INT,
  });
  const cost = meter.createCounter('gateway.upstream.cost.usd', {
    description: 'Estimated DeepSeek cost in USD from the configured price table (DEEPSEEK_PRICES), by model and price period.',
    unit: 'USD',
  });
  return {
    record({ operation, model, usage, at = new Date() }) {
      const genAi: Attributes = {
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': 'deepseek',
        'gen_ai.response.model': model,
      };
      tokenUsage.record(usage.promptTokens, { ...genAi, 'gen_ai.token.type': 'input' });
      tokenUsage.record(usage.completionTokens, { ...genAi, 'gen_ai.token.type': 'output' });
      const byModel = { 'gen_ai.response.model': model };
      tokens.add(usage.promptTokens, { ...byModel, 'token.type': 'prompt' });
      tokens.add(usage.completionTokens, { ...byModel, 'token.type': 'completion' });
      tokens.add(usage.cacheHitTokens, { ...byModel, 'token.type': 'cache_hit' });
      tokens.add(usage.cacheMissTokens, { ...byModel, 'token.type': 'cache_miss' });
      const estimate = estimateCostUsd(prices, model, usage, at);
      if (estimate) cost.add(estimate.usd, { ...byModel, 'price.period': estimate.period });
    },
  };
}

// ---------------------------------------------------------------------------- coalescer

export interface CoalescerMetrics {
  /** One coalescer batch of `size` loads (from one or many requests). */
  batch(size: number): void;
}

export function coalescerMetrics(meter: Meter = defaultMeter()): CoalescerMetrics {
  const sizes = meter.createHistogram('gateway.coalescer.batch.size', {
    description: 'Loads per coalescer batch (each batch costs at most one cache read and one cache write).',
    unit: '{load}',
    valueType: ValueType.INT,
    advice: { explicitBucketBoundaries: BATCH_SIZES },
  });
  return { batch: (size) => sizes.record(size) };
}

// ---------------------------------------------------------------------------- observed state

/** Structural views of the figures the layers already keep (read at each scrape only). */
export interface ObservedSources {
  transport(): {
    circuit: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
    inFlight: number;
    queued: number;
    connections: number;
    calls: number;
    failures: number;
    retries: number;
    retryBudgetExhausted: number;
    rejectedOverloaded: number;
    shortCircuited: number;
  };
  cache(): {
    kind: string;
    hits: number;
    misses: number;
    writes: number;
    errors: number;
    timeouts: number;
    entries: number | null;
    available: boolean;
  };
  coalescing(): { upstreamCalls: number; joinedInFlight: number; batches: number };
}

const CIRCUIT_STATE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;

/**
 * Observable instruments over the counters and gauges the transport, cache and coalescer
 * already keep: nothing is recorded on the request path, the figures are read when
 * Prometheus scrapes. Returns a function that stops observing (call it on close).
 */
export function observeGateway(sources: ObservedSources, meter: Meter = defaultMeter()): () => void {
  const int = { valueType: ValueType.INT } as const;
  const gauge = (name: string, description: string, unit = '1') =>
    meter.createObservableGauge(name, { description, unit, ...int });
  const counter = (name: string, description: string, unit: string) =>
    meter.createObservableCounter(name, { description, unit, ...int });

  const circuit = gauge('gateway.upstream.circuit.state', 'Upstream circuit breaker: 0 closed, 1 half-open, 2 open.');
  const inFlight = gauge('gateway.upstream.in_flight', 'Upstream exchanges holding a concurrency slot.', '{request}');
  const queued = gauge('gateway.upstream.queued', 'Upstream attempts waiting for a concurrency slot.', '{request}');
  const connections = gauge('gateway.upstream.connections', 'Open sockets in the upstream pool.', '{connection}');
  const calls = counter('gateway.upstream.calls', 'Upstream calls made (a call is one client request, whatever its attempts).', '{call}');
  const failures = counter('gateway.upstream.failures', 'Upstream calls that ended in an error (aborts by the caller excluded).', '{call}');
  const retries = counter('gateway.upstream.retries', 'Upstream attempts repeated after a retryable failure.', '{retry}');
  const budgetExhausted = counter('gateway.upstream.retry_budget_exhausted', 'Retries refused by the retry budget.', '{retry}');
  const overloaded = counter('gateway.upstream.rejected_overloaded', 'Calls refused because the local queue was full (OVERLOADED).', '{call}');
  const shortCircuited = counter('gateway.upstream.short_circuited', 'Calls failed at once because the circuit was open.', '{call}');

  const cacheHits = counter('gateway.cache.hits', 'Completion ids found in the cache store.', '{lookup}');
  const cacheMisses = counter('gateway.cache.misses', 'Completion ids not found in the cache store.', '{lookup}');
  const cacheWrites = counter('gateway.cache.writes', 'Entries written to the cache store.', '{entry}');
  const cacheErrors = counter('gateway.cache.errors', 'Cache store calls that failed (error.type: error) or timed out (error.type: timeout).', '{call}');
  const cacheEntries = gauge('gateway.cache.entries', 'Entries in the in-memory cache store (not reported for Redis).', '{entry}');
  const cacheAvailable = gauge('gateway.cache.available', '1 while the cache store answers, 0 after a failure until it answers again.');

  const upstreamCalls = counter('gateway.coalescer.upstream_calls', 'Upstream completion calls started by the coalescer.', '{call}');
  const joined = counter('gateway.coalescer.joined', 'Loads that joined an identical upstream call already in flight.', '{load}');
  const batches = counter('gateway.coalescer.batches', 'Coalescer batches run.', '{batch}');

  const observables: Observable[] = [
    circuit, inFlight, queued, connections, calls, failures, retries, budgetExhausted, overloaded, shortCircuited,
    cacheHits, cacheMisses, cacheWrites, cacheErrors, cacheEntries, cacheAvailable, upstreamCalls, joined, batches,
  ];

  const callback = (result: BatchObservableResult): void => {
    const transport = sources.transport();
    result.observe(circuit, CIRCUIT_STATE[transport.circuit]);
    result.observe(inFlight, transport.inFlight);
    result.observe(queued, transport.queued);
    result.observe(connections, transport.connections);
    result.observe(calls, transport.calls);
    result.observe(failures, transport.failures);
    result.observe(retries, transport.retries);
    result.observe(budgetExhausted, transport.retryBudgetExhausted);
    result.observe(overloaded, transport.rejectedOverloaded);
    result.observe(shortCircuited, transport.shortCircuited);

    const cache = sources.cache();
    const store = { 'cache.store': cache.kind };
    result.observe(cacheHits, cache.hits, store);
    result.observe(cacheMisses, cache.misses, store);
    result.observe(cacheWrites, cache.writes, store);
    result.observe(cacheErrors, cache.errors, { ...store, 'error.type': 'error' });
    result.observe(cacheErrors, cache.timeouts, { ...store, 'error.type': 'timeout' });
    if (cache.entries !== null) result.observe(cacheEntries, cache.entries, store);
    result.observe(cacheAvailable, cache.available ? 1 : 0, store);

    const coalescing = sources.coalescing();
    result.observe(upstreamCalls, coalescing.upstreamCalls);
    result.observe(joined, coalescing.joinedInFlight);
    result.observe(batches, coalescing.batches);
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
