import type { ApolloServerPlugin } from '@apollo/server';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import type { GraphQLContext } from '../context';
import { responseErrorCodes } from './error-codes';

/** Reads W3C trace context from Apollo's header map (names are lower-cased). */
const headerGetter: TextMapGetter<Map<string, string>> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key.toLowerCase()),
};

/**
 * One span per GraphQL operation (kind SERVER), named `{type} {name}` as the GraphQL
 * semantic conventions say, child of the caller's `traceparent` when one came. Its
 * context goes into the request's ledger, from where the coalescer parents the batch,
 * cache and upstream spans, so the upstream request carries this trace. The document and
 * variables are never recorded: they hold prompts.
 */
export function operationSpanPlugin(tracer: Tracer): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart({ request, contextValue }) {
      const parent = request.http ? propagation.extract(ROOT_CONTEXT, request.http.headers, headerGetter) : ROOT_CONTEXT;
      const span = tracer.startSpan('GraphQL Operation', { kind: SpanKind.SERVER }, parent);
      if (contextValue.ledger) contextValue.ledger.traceContext = trace.setSpan(parent, span);
      return {
        async didResolveOperation({ operation, operationName }) {
          if (!operation) return;
          span.setAttribute('graphql.operation.type', operation.operation);
          if (operationName) span.setAttribute('graphql.operation.name', operationName);
          span.updateName(operationName ? `${operation.operation} ${operationName}` : operation.operation);
        },
        async willSendResponse({ response }) {
          const codes = responseErrorCodes(response);
          if (codes.length > 0) {
            const distinct = [...new Set(codes)];
            span.setAttribute('graphql.error.codes', distinct);
            span.setStatus({ code: SpanStatusCode.ERROR, message: distinct.join(',') });
          }
          if (response.http.status) span.setAttribute('http.response.status_code', response.http.status);
          span.end();
        },
      };
    },
  };
}
