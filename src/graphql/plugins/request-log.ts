import type { ApolloServerPlugin } from '@apollo/server';
import { isSpanContextValid, trace, type Meter } from '@opentelemetry/api';
import { graphqlMetrics } from '../../telemetry/metrics';
import type { GraphQLContext } from '../context';
import { responseErrorCodes } from './error-codes';

type Level = 'info' | 'warn' | 'error';

/** Masked bugs are errors; DeepSeek or capacity trouble is a warning; the rest is traffic. */
export function levelOf(codes: readonly string[]): Level {
  if (codes.includes('INTERNAL_SERVER_ERROR')) return 'error';
  if (codes.some((code) => code.startsWith('UPSTREAM_') || code === 'OVERLOADED')) return 'warn';
  return 'info';
}

/**
 * ONE structured log line per GraphQL request, when its response is ready, plus the
 * `graphql.server.*` metrics. The line names the operation, its outcome (error codes),
 * duration, what it cost upstream and its trace id. It never holds the document, the
 * variables or any answer: prompts live there.
 */
export function requestLogPlugin(meter: Meter): ApolloServerPlugin<GraphQLContext> {
  const metrics = graphqlMetrics(meter);
  return {
    async requestDidStart() {
      const startedAt = performance.now();
      return {
        async willSendResponse({ response, contextValue, operation, operationName }) {
          const cost = contextValue.ledger?.finish();
          const durationMs = cost?.totalMs ?? Math.round((performance.now() - startedAt) * 10) / 10;
          const codes = responseErrorCodes(response);
          const spanContext = contextValue.ledger?.traceContext && trace.getSpanContext(contextValue.ledger.traceContext);
          metrics.operation({
            type: operation?.operation,
            name: operationName ?? undefined,
            seconds: durationMs / 1000,
            errorCodes: codes,
          });
          contextValue.logger[levelOf(codes)](
            {
              operationName: operationName ?? null,
              operationType: operation?.operation ?? null,
              status: response.http.status ?? 200,
              outcome: codes.length === 0 ? 'ok' : 'error',
              ...(codes.length > 0 ? { errorCodes: [...new Set(codes)], errorCount: codes.length } : {}),
              durationMs,
              ...(cost
                ? {
                    upstreamCalls: cost.upstreamCalls,
                    cacheHits: cost.cacheHits,
                    joinedInFlight: cost.joinedInFlight,
                    upstreamMs: cost.upstreamMs,
                    estimatedCostUsd: cost.estimatedCostUsd,
                  }
                : {}),
              ...(spanContext && isSpanContextValid(spanContext) ? { traceId: spanContext.traceId } : {}),
            },
            'graphql request',
          );
        },
      };
    },
  };
}
