import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  isSpanContextValid,
  propagation,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import type { PriceTable } from '../config';
import { contextWithSpan, type Instruments } from './instruments';
import { RequestLedger, type RequestCost } from './ledger';
import { suppressTracing } from '@opentelemetry/core';
import { accessLogOf, bindingsOf, type Logger } from './logger';
import { graphqlMetrics, type GraphQLMetrics } from './metrics';

/** Where an operation came in. */
export type OperationTransport = 'http' | 'websocket' | 'sse' | 'multipart';

/** Reads one request header by lower-case name (whatever the transport keeps them in). */
export type HeaderReader = (name: string) => string | undefined;

const headerGetter: TextMapGetter<HeaderReader> = {
  keys: () => [],
  get: (read, key) => read(key.toLowerCase()),
};

type Level = 'debug' | 'info' | 'warn' | 'error';

const CLIENT_CLOSED = 'CLIENT_CLOSED_REQUEST';

/**
 * Masked bugs are errors; DeepSeek or capacity trouble is a warning; a client that went
 * away is routine (debug); the rest is traffic.
 */
export function levelOf(codes: readonly string[]): Level {
  if (codes.includes('INTERNAL_SERVER_ERROR')) return 'error';
  if (codes.some((code) => code.startsWith('UPSTREAM_') || code === 'OVERLOADED')) return 'warn';
  if (codes.length > 0 && codes.every((code) => code === CLIENT_CLOSED)) return 'debug';
  return 'info';
}

/** `ok`, `client_closed` (every error is the client's going away), or `error`. */
export function outcomeOf(codes: readonly string[]): 'ok' | 'client_closed' | 'error' {
  if (codes.length === 0) return 'ok';
  return codes.every((code) => code === CLIENT_CLOSED) ? 'client_closed' : 'error';
}

export interface OperationStart {
  transport: OperationTransport;
  /** Request headers, for an incoming W3C `traceparent` (WebSocket: from the subscribe message or `connection_init`). */
  headers?: HeaderReader;
  /** The operation's logger (already carries the request or subscription id). */
  logger: Logger;
  /** A warm-up operation: no metric and no log line (its span is not recorded either). */
  silent?: boolean;
}

/**
 * The ONE telemetry observer of GraphQL operations, whatever their transport (HTTP,
 * WebSocket, SSE): every operation is started here, told what it resolved to, told of each
 * result it sent, and ended; the span, the `graphql.server.*` metrics and the one log line
 * per operation come from here only. One instance per process (built by the HTTP edge).
 */
export class OperationObserver {
  readonly #tracer: Tracer;
  readonly #metrics: GraphQLMetrics;
  readonly #prices: PriceTable | undefined;

  constructor(instruments: Instruments, prices?: PriceTable) {
    this.#tracer = instruments.tracer;
    this.#metrics = graphqlMetrics(instruments.meter);
    this.#prices = prices;
  }

  /** Starts an operation: its span (child of an incoming `traceparent`) and its cost ledger. */
  start(init: OperationStart): ObservedOperation {
    const parent = init.headers ? propagation.extract(ROOT_CONTEXT, init.headers, headerGetter) : ROOT_CONTEXT;
    // A warm-up operation records no span, nor does anything it causes (cache, batch).
    const span = this.#tracer.startSpan('GraphQL Operation', { kind: SpanKind.SERVER }, init.silent ? suppressTracing(parent) : parent);
    const operation = new ObservedOperation(
      init.transport,
      span,
      contextWithSpan(init.silent ? suppressTracing(parent) : parent, span),
      new RequestLedger(this.#prices),
      init.logger,
      this.#metrics,
    );
    operation.silent = init.silent === true;
    return operation;
  }
}

/** How an operation ended, as its transport saw it. */
export interface OperationEnd {
  /** HTTP status of the response (HTTP and the SSE request); absent for WebSocket. */
  status?: number;
  /** Codes of errors reported at the end that `result` has not seen (e.g. a graphql-ws `error` message). */
  codes?: readonly string[];
}

/**
 * One operation as telemetry sees it. It is also the operation's ONE carrier of trace
 * context (`traceContext`: the operation span, parent of every span the operation causes)
 * and its cost ledger. `end` is idempotent: the first call wins.
 */
export class ObservedOperation {
  readonly startedAt = performance.now();
  type: string | undefined;
  name: string | undefined;
  /** The caller's tenant, once known (never the subject or the token). */
  tenant: string | undefined;
  /** Results sent (subscription payloads; 1 for a query or mutation). */
  results = 0;
  /** A warm-up operation: ended without a metric or a log line. */
  silent = false;
  readonly #codes: string[] = [];
  /** The quota limits that refused this operation's work (QUOTAS_FILE), for its log line. */
  readonly #quotaLimits = new Set<string>();
  #ended = false;
  #hot = false;
  #direct = false;

  constructor(
    readonly transport: OperationTransport,
    private readonly span: Span,
    /** The operation span's context: parent of the batch, cache, stream and upstream spans. */
    readonly traceContext: Context,
    readonly ledger: RequestLedger,
    readonly logger: Logger,
    private readonly metrics: GraphQLMetrics,
  ) {}

  get ended(): boolean {
    return this.#ended;
  }

  /** The caller is known: its tenant goes on the span, the log line and a bounded metric label. */
  identify(tenant: string): void {
    this.tenant = tenant;
    this.span.setAttribute('gateway.tenant', tenant);
  }

  /** The document resolved to an operation: names the span, the metrics and the log line. */
  resolved(type: string, name: string | undefined): void {
    this.type = type;
    this.name = name || undefined;
    this.span.setAttribute('graphql.operation.type', type);
    if (this.name) this.span.setAttribute('graphql.operation.name', this.name);
    this.span.updateName(this.name ? `${type} ${this.name}` : type);
  }

  /** Served as a hot answer (src/graphql/hot-answers.ts): said on its span and log line. */
  servedHot(): void {
    this.#hot = true;
    this.span.setAttribute('gateway.hot_answer', true);
  }

  /** Run without Apollo's pipeline (src/graphql/direct-operations.ts): said on its span and log line. */
  servedDirect(): void {
    this.#direct = true;
    this.span.setAttribute('gateway.direct_operation', true);
  }

  /** A quota limit refused (part of) this operation: named in its log line and span. */
  refusedBy(limit: string): void {
    this.#quotaLimits.add(limit);
  }

  /** One result went out (a response, or one subscription payload) with these error codes. */
  result(codes: readonly string[]): void {
    this.results += 1;
    this.#codes.push(...codes);
  }

  /** The operation is over: ends the span, records the metrics, writes the one log line. */
  end(outcome: OperationEnd = {}): RequestCost {
    const cost = this.ledger.finish();
    if (this.#ended) return cost;
    this.#ended = true;
    this.#codes.push(...(outcome.codes ?? []));
    const codes = this.#codes;
    const distinct = codes.length === 0 ? codes : [...new Set(codes)];
    if (distinct.length > 0) {
      this.span.setAttribute('graphql.error.codes', distinct);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: distinct.join(',') });
    }
    if (outcome.status !== undefined) this.span.setAttribute('http.response.status_code', outcome.status);
    const quotaLimits = this.#quotaLimits.size > 0 ? [...this.#quotaLimits] : undefined;
    if (quotaLimits) this.span.setAttribute('gateway.quota.limits', quotaLimits);
    // Streaming transports serve subscriptions only; their results are the chunks sent.
    const subscription = this.transport !== 'http';
    if (subscription) this.span.setAttribute('graphql.subscription.chunks', this.results);
    this.span.end();
    if (this.silent) return cost;

    this.metrics.operation({ type: this.type, name: this.name, tenant: this.tenant, seconds: cost.totalMs / 1000, errorCodes: codes });
    const spanContext = this.span.spanContext();
    // The unredacted access logger (built from known scalars only: see `accessLogOf`), with
    // the operation logger's bindings (reqId, subscription ids); else the logger itself.
    const access = accessLogOf(this.logger);
    const level = levelOf(codes);
    if (access && !access.enabled(level)) return cost;
    // Field by field, in the line's order: conditional spreads would make a small object
    // for each present field, on every operation.
    const fields: Record<string, unknown> = { operationName: this.name ?? null, operationType: this.type ?? null, transport: this.transport };
    if (this.tenant !== undefined) fields.tenant = this.tenant;
    if (outcome.status !== undefined) fields.status = outcome.status;
    fields.outcome = outcomeOf(codes);
    if (codes.length > 0) {
      fields.errorCodes = distinct;
      fields.errorCount = codes.length;
    }
    if (quotaLimits) fields.quotaLimits = quotaLimits;
    if (subscription) fields.chunks = this.results;
    fields.durationMs = cost.totalMs;
    fields.upstreamCalls = cost.upstreamCalls;
    fields.cacheHits = cost.cacheHits;
    fields.joinedInFlight = cost.joinedInFlight;
    if (cost.joinedRemote > 0) fields.joinedRemote = cost.joinedRemote;
    if (this.#hot) fields.hotAnswer = true;
    if (this.#direct) fields.directOperation = true;
    fields.upstreamMs = cost.upstreamMs;
    fields.estimatedCostUsd = cost.estimatedCostUsd;
    if (isSpanContextValid(spanContext)) fields.traceId = spanContext.traceId;
    const msg = subscription ? 'graphql subscription' : 'graphql request';
    if (access) access.write(level, bindingsOf(this.logger), fields, msg);
    else this.logger[level](fields, msg);
    return cost;
  }
}
