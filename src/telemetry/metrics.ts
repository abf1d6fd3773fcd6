import { ValueType, type Attributes, type Meter } from '@opentelemetry/api';
import type { PriceTable } from '../config';
import { estimateCostUsd, type TokenUsage } from './cost';
import { createSeriesHistogram, SeriesCache, type HistogramSeries } from './histograms';

/**
 * Every instrument the gateway records on the request path, defined in this one file
 * (the figures read at scrape time are in `observed.ts`). Layers get small typed recorders
 * from the factories below, built from the meter the composition root hands them
 * (`Instruments.meter`); with the no-op meter every recorder is a no-op costing one call.
 *
 * Names follow the OpenTelemetry semantic conventions where one exists
 * (`http.server.request.duration`, `http.client.request.duration`,
 * `gen_ai.client.token.usage`); the gateway's own are under `gateway.*` and `graphql.*`.
 * Prometheus sees dots as underscores and counters with a `_total` suffix.
 */

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

export function httpServerMetrics(meter: Meter): HttpServerMetrics {
  const duration = new SeriesCache(
    createSeriesHistogram(meter, 'http.server.request.duration', { description: 'Duration of HTTP server requests.', unit: 's', boundaries: SERVER_SECONDS }),
  );
  return {
    request({ method, route, status, seconds }) {
      const key = `${method}\u0000${status}\u0000${route ?? ''}`;
      let series = duration.get(key);
      if (!series) {
        const attributes: Attributes = { 'http.request.method': method, 'http.response.status_code': status };
        if (route) attributes['http.route'] = route;
        series = duration.bind(key, attributes);
      }
      series.record(seconds);
    },
  };
}

// ---------------------------------------------------------------------------- GraphQL

/** Operation names come from clients: past this many distinct names, new ones are `(other)`. */
const MAX_OPERATION_NAMES = 200;
/** Tenants come from verified tokens: past this many distinct tenants, new ones are `(other)`. */
const MAX_TENANTS = 100;
/** …and a name longer than this is `(too long)`, whatever validation let through. */
const MAX_OPERATION_NAME_LABEL = 64;
/**
 * Model names come from DeepSeek's responses, not from the configuration: past this many
 * distinct names (there are two models today), new ones are `(other)`, and one longer than
 * `MAX_MODEL_LABEL` is `(too long)`, so a misbehaving upstream cannot grow the series.
 */
const MAX_MODELS = 32;
const MAX_MODEL_LABEL = 64;
/** `extensions.code` values are public codes; anything else is counted as `(other)`. */
const MAX_ERROR_CODE_LABEL = 40;

/**
 * A value from outside as a metric label: the first `maxDistinct` distinct values, then
 * `(other)`; one longer than `maxLength` is `(too long)`; none is ''. Each instance owns its
 * set, so the series a client (or an upstream) can create are bounded per metric.
 */
function labelLimiter(maxDistinct: number, maxLength = Infinity): (value: string | undefined) => string {
  const seen = new Set<string>();
  return (value) => {
    if (!value) return '';
    if (value.length > maxLength) return '(too long)';
    if (seen.has(value)) return value;
    if (seen.size >= maxDistinct) return '(other)';
    seen.add(value);
    return value;
  };
}

/** A tenant as a metric label: the first `MAX_TENANTS` distinct tenants by name, then `(other)`. */
function tenantLabels(): (tenant: string | undefined) => string {
  return labelLimiter(MAX_TENANTS);
}

export interface GraphQLOperationFigures {
  /** `query`, `mutation`, `subscription`, or undefined when the document did not resolve. */
  type: string | undefined;
  /** undefined for an anonymous operation. */
  name: string | undefined;
  /** The caller's tenant; undefined when the operation was refused before it was known. */
  tenant?: string | undefined;
  seconds: number;
  /** `extensions.code` of each error in the response (empty when it succeeded). */
  errorCodes: readonly string[];
}

export interface GraphQLMetrics {
  operation(figures: GraphQLOperationFigures): void;
}

export function graphqlMetrics(meter: Meter): GraphQLMetrics {
  // Counted here and read at collection time (an asynchronous counter, the same series on
  // /metrics): one synchronous record fewer per operation, whose attribute hashing was a
  // third of the metrics' cost on a cache hit. Bounded like the labels it is keyed by.
  const counts = new Map<string, { attributes: Attributes; count: number; duration: HistogramSeries }>();
  const requests = meter.createObservableCounter('graphql.server.requests', {
    description: 'GraphQL operations answered, by operation and outcome (ok; client_closed when the client went away; error when the response has any other error).',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  requests.addCallback((result) => {
    for (const { attributes, count } of counts.values()) result.observe(count, attributes);
  });
  const errors = meter.createCounter('graphql.server.errors', {
    description: 'GraphQL errors in responses, by operation and error code (extensions.code).',
    unit: '{error}',
    valueType: ValueType.INT,
  });
  const duration = createSeriesHistogram(meter, 'graphql.server.operation.duration', {
    description: 'Time from the start of a GraphQL request to its response, by operation and outcome.',
    unit: 's',
    boundaries: SERVER_SECONDS,
  });
  // Owned by this instance: bounds the label values a client can create.
  const boundedName = labelLimiter(MAX_OPERATION_NAMES, MAX_OPERATION_NAME_LABEL);
  const boundedTenant = tenantLabels();
  return {
    operation({ type, name, tenant, seconds, errorCodes }) {
      const operationType = type ?? '';
      const operationName = boundedName(name);
      const tenantLabel = boundedTenant(tenant);
      const outcome = errorCodes.length === 0 ? 'ok' : errorCodes.every((code) => code === 'CLIENT_CLOSED_REQUEST') ? 'client_closed' : 'error';
      const key = `${operationType}\u0000${operationName}\u0000${tenantLabel}\u0000${outcome}`;
      let entry = counts.get(key);
      if (!entry) {
        const attributes: Attributes = {
          'graphql.operation.type': operationType,
          'graphql.operation.name': operationName,
          'gateway.tenant': tenantLabel,
          outcome,
        };
        entry = { attributes, count: 0, duration: duration.series(attributes) };
        counts.set(key, entry);
      }
      entry.count += 1;
      entry.duration.record(seconds);
      for (const code of errorCodes) {
        const errorType = /^[A-Z_]+$/.test(code) && code.length <= MAX_ERROR_CODE_LABEL ? code : '(other)';
        errors.add(1, { 'graphql.operation.type': operationType, 'graphql.operation.name': operationName, 'error.type': errorType });
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
  /** One whole call: every attempt, backoff and queue wait included, and a stream's body. */
  call(figures: UpstreamCallFigures): void;
  /** One HTTP exchange (attempt). */
  attempt(figures: UpstreamAttemptFigures): void;
}

export function upstreamMetrics(meter: Meter): UpstreamMetrics {
  const calls = new SeriesCache(
    createSeriesHistogram(meter, 'gateway.upstream.call.duration', {
      description: 'Duration of upstream (DeepSeek) calls including retries and waits, by path and outcome (ok or error code).',
      unit: 's',
      boundaries: UPSTREAM_SECONDS,
    }),
  );
  const attempts = new SeriesCache(
    createSeriesHistogram(meter, 'http.client.request.duration', {
      description: 'Duration of each HTTP exchange with DeepSeek (one per attempt), by status or error.',
      unit: 's',
      boundaries: UPSTREAM_SECONDS,
    }),
  );
  return {
    call({ method, path, outcome, seconds }) {
      const key = `${method}\u0000${path}\u0000${outcome}`;
      (calls.get(key) ?? calls.bind(key, { 'http.request.method': method, 'url.path': path, outcome })).record(seconds);
    },
    attempt({ method, path, serverAddress, serverPort, status, errorType, seconds }) {
      const key = `${method}\u0000${path}\u0000${serverAddress}\u0000${serverPort ?? ''}\u0000${status ?? ''}\u0000${errorType ?? ''}`;
      let series = attempts.get(key);
      if (!series) {
        const attributes: Attributes = { 'http.request.method': method, 'url.path': path, 'server.address': serverAddress };
        if (serverPort !== undefined) attributes['server.port'] = serverPort;
        if (status !== undefined) attributes['http.response.status_code'] = status;
        if (errorType) attributes['error.type'] = errorType;
        series = attempts.bind(key, attributes);
      }
      series.record(seconds);
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

/** A running total of an asynchronous counter, with the attributes it is reported under. */
interface Total {
  attributes: Attributes;
  value: number;
}

function addTotal(totals: Map<string, Total>, model: string, name: string, label: string, value: number): void {
  const key = `${model}\u0000${label}`;
  let total = totals.get(key);
  if (!total) {
    total = { attributes: { 'gen_ai.response.model': model, [name]: label }, value: 0 };
    totals.set(key, total);
  }
  total.value += value;
}

export function usageMetrics(prices: PriceTable, meter: Meter): UsageMetrics {
  const tokenUsage = new SeriesCache(
    createSeriesHistogram(meter, 'gen_ai.client.token.usage', {
      description: 'Tokens per DeepSeek completion, input and output (GenAI semantic conventions).',
      unit: '{token}',
      valueType: ValueType.INT,
      boundaries: TOKEN_BUCKETS,
    }),
  );
  // Summed here and read at collection time (asynchronous counters, the same series on
  // /metrics): five synchronous records fewer per upstream call. Keyed by the model's label
  // (bounded: `MAX_MODELS`) and type or price period.
  const tokenTotals = new Map<string, Total>();
  const costTotals = new Map<string, Total>();
  const tokens = meter.createObservableCounter('gateway.upstream.tokens', {
    description: 'Tokens billed by DeepSeek, by model and type (prompt, completion, cache_hit, cache_miss).',
    unit: '{token}',
    valueType: ValueType.INT,
  });
  tokens.addCallback((result) => {
    for (const { attributes, value } of tokenTotals.values()) result.observe(value, attributes);
  });
  const cost = meter.createObservableCounter('gateway.upstream.cost.usd', {
    description: 'Estimated DeepSeek cost in USD from the configured price table (DEEPSEEK_PRICES), by model and price period.',
    unit: 'USD',
  });
  cost.addCallback((result) => {
    for (const { attributes, value } of costTotals.values()) result.observe(value, attributes);
  });
  const boundedModel = labelLimiter(MAX_MODELS, MAX_MODEL_LABEL);
  const tokenSeries = (operation: UsageFigures['operation'], model: string, type: 'input' | 'output'): HistogramSeries => {
    const key = `${operation}\u0000${model}\u0000${type}`;
    return (
      tokenUsage.get(key) ??
      tokenUsage.bind(key, { 'gen_ai.operation.name': operation, 'gen_ai.provider.name': 'deepseek', 'gen_ai.response.model': model, 'gen_ai.token.type': type })
    );
  };
  return {
    record({ operation, model: responseModel, usage, at = new Date() }) {
      const model = boundedModel(responseModel);
      tokenSeries(operation, model, 'input').record(usage.promptTokens);
      tokenSeries(operation, model, 'output').record(usage.completionTokens);
      addTotal(tokenTotals, model, 'token.type', 'prompt', usage.promptTokens);
      addTotal(tokenTotals, model, 'token.type', 'completion', usage.completionTokens);
      addTotal(tokenTotals, model, 'token.type', 'cache_hit', usage.cacheHitTokens);
      addTotal(tokenTotals, model, 'token.type', 'cache_miss', usage.cacheMissTokens);
      const estimate = estimateCostUsd(prices, responseModel, usage, at);
      if (estimate) addTotal(costTotals, model, 'price.period', estimate.period, estimate.usd);
    },
  };
}

// ---------------------------------------------------------------------------- coalescer

export interface CoalescerMetrics {
  /** One coalescer batch of `size` loads (from one or many requests). */
  batch(size: number): void;
}

export function coalescerMetrics(meter: Meter): CoalescerMetrics {
  const sizes = createSeriesHistogram(meter, 'gateway.coalescer.batch.size', {
    description: 'Loads per coalescer batch (each batch costs at most one cache read and one cache write).',
    unit: '{load}',
    valueType: ValueType.INT,
    boundaries: BATCH_SIZES,
  }).series({});
  return { batch: (size) => sizes.record(size) };
}

// ---------------------------------------------------------------------------- quotas

export interface QuotaMetrics {
  /** Work a quota refused: `limit` is the policy's limit name (a fixed set), `tenant` bounded. */
  refused(limit: string, tenant: string): void;
}

export function quotaMetrics(meter: Meter): QuotaMetrics {
  const refusals = meter.createCounter('gateway.quota.refusals', {
    description: 'Operations, upstream calls and streams refused by a quota (QUOTAS_FILE), by limit and tenant.',
    unit: '{refusal}',
    valueType: ValueType.INT,
  });
  const boundedTenant = tenantLabels();
  return {
    refused: (limit, tenant) => refusals.add(1, { 'gateway.quota.limit': limit, 'gateway.tenant': boundedTenant(tenant) }),
  };
}
