import type { GraphQLFormattedError } from 'graphql';
import { graphqlMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';

interface Running {
  operationName: string | null;
  startedAt: number;
  chunks: number;
  codes: string[];
}

/**
 * The subscription counterpart of the request-log plugin (Apollo's plugins do not see
 * WebSocket operations): ONE log line and the `graphql.server.*` metrics per subscription,
 * when it ends. Like the request log it names the operation, never the document, the
 * variables or any streamed text.
 */
export class SubscriptionLog {
  // Operation ids are unique per connection only, so runs are kept per connection context.
  readonly #runs = new WeakMap<object, Map<string, Running>>();
  readonly #metrics = graphqlMetrics();

  constructor(private readonly logger: Logger) {}

  start(connection: object, id: string, operationName: string | null | undefined): void {
    let runs = this.#runs.get(connection);
    if (!runs) this.#runs.set(connection, (runs = new Map()));
    runs.set(id, { operationName: operationName ?? null, startedAt: performance.now(), chunks: 0, codes: [] });
  }

  next(connection: object, id: string, errors: readonly GraphQLFormattedError[] | undefined): void {
    const run = this.#runs.get(connection)?.get(id);
    if (!run) return;
    run.chunks += 1;
    for (const error of errors ?? []) run.codes.push(String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
  }

  finish(connection: object, id: string, errors: readonly GraphQLFormattedError[] = []): void {
    const runs = this.#runs.get(connection);
    const run = runs?.get(id);
    if (!run) return;
    runs!.delete(id);
    for (const error of errors) run.codes.push(String(error.extensions?.code ?? 'INTERNAL_SERVER_ERROR'));
    const durationMs = Math.round((performance.now() - run.startedAt) * 10) / 10;
    this.#metrics.operation({ type: 'subscription', name: run.operationName ?? undefined, seconds: durationMs / 1000, errorCodes: run.codes });
    const level = run.codes.some((code) => code === 'INTERNAL_SERVER_ERROR')
      ? 'error'
      : run.codes.some((code) => code.startsWith('UPSTREAM_') || code === 'OVERLOADED')
        ? 'warn'
        : 'info';
    this.logger[level](
      {
        operationName: run.operationName,
        operationType: 'subscription',
        outcome: run.codes.length === 0 ? 'ok' : 'error',
        ...(run.codes.length > 0 ? { errorCodes: [...new Set(run.codes)] } : {}),
        chunks: run.chunks,
        durationMs,
      },
      'graphql subscription',
    );
  }
}
