import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { GraphQLFormattedError } from 'graphql';
import type { Instruments } from '../telemetry/instruments';
import { graphqlMetrics, type GraphQLMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { levelOf } from './plugins/request-log';

interface Running {
  operationName: string | null;
  startedAt: number;
  chunks: number;
  codes: string[];
  span: Span;
}

/**
 * What the Apollo plugins do for HTTP operations, for WebSocket subscriptions (which those
 * plugins never see): an operation span (parent of the upstream stream the subscription
 * starts), the `graphql.server.*` metrics and ONE log line when the subscription ends. Like
 * the request log it names the operation, never the document, the variables or any text.
 */
export class SubscriptionTelemetry {
  // Operation ids are unique per connection only, so runs are kept per connection context.
  readonly #runs = new WeakMap<object, Map<string, Running>>();
  readonly #metrics: GraphQLMetrics;
  readonly #tracer: Tracer;

  constructor(
    private readonly logger: Logger,
    instruments: Instruments,
  ) {
    this.#metrics = graphqlMetrics(instruments.meter);
    this.#tracer = instruments.tracer;
  }

  start(connection: object, id: string, operationName: string | null | undefined): void {
    let runs = this.#runs.get(connection);
    if (!runs) this.#runs.set(connection, (runs = new Map()));
    const name = operationName ?? null;
    const span = this.#tracer.startSpan(
      name ? `subscription ${name}` : 'subscription',
      {
        kind: SpanKind.SERVER,
        attributes: { 'graphql.operation.type': 'subscription', ...(name ? { 'graphql.operation.name': name } : {}) },
      },
      ROOT_CONTEXT,
    );
    runs.set(id, { operationName: name, startedAt: performance.now(), chunks: 0, codes: [], span });
  }

  /** The operation span's context, for the upstream stream the subscription may start. */
  traceContext(connection: object, id: string): Context | undefined {
    const run = this.#runs.get(connection)?.get(id);
    return run ? trace.setSpan(ROOT_CONTEXT, run.span) : undefined;
  }

  next(connection: object, id: string, errors: readonly GraphQLFormattedError[] | undefined): void {
    const run = this.#runs.get(connection)?.get(id);
    if (!run) return;
    run.chunks += 1;
    for (const error of errors ?? []) run.codes.push(codeOf(error));
  }

  finish(connection: object, id: string, errors: readonly GraphQLFormattedError[] = []): void {
    const runs = this.#runs.get(connection);
    const run = runs?.get(id);
    if (!run) return;
    runs!.delete(id);
    for (const error of errors) run.codes.push(codeOf(error));
    const durationMs = Math.round((performance.now() - run.startedAt) * 10) / 10;
    const codes = [...new Set(run.codes)];
    this.#metrics.operation({ type: 'subscription', name: run.operationName ?? undefined, seconds: durationMs / 1000, errorCodes: run.codes });
    run.span.setAttribute('graphql.subscription.chunks', run.chunks);
    if (codes.length > 0) {
      run.span.setAttribute('graphql.error.codes', codes);
      run.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    run.span.end();
    const level = levelOf(codes);
    const spanContext = run.span.spanContext();
    this.logger[level](
      {
        operationName: run.operationName,
        operationType: 'subscription',
        outcome: codes.length === 0 ? 'ok' : 'error',
        ...(codes.length > 0 ? { errorCodes: codes } : {}),
        chunks: run.chunks,
        durationMs,
        ...(run.span.isRecording() ? { traceId: spanContext.traceId } : {}),
      },
      'graphql subscription',
    );
  }
}

function codeOf(error: GraphQLFormattedError): string {
  return String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
}
