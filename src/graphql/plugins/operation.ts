import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode, OperationDefinitionNode } from 'graphql';
import type { GraphQLContext } from '../context';
import { settleOperation } from '../settle-operation';

/**
 * Apollo's side of the operation pipeline (src/graphql/pipeline.ts) for HTTP operations:
 * tells the operation what its document resolved to, and ends it when the response is
 * ready, which ends its span, records the `graphql.server.*` metrics and writes its one
 * log line. The response gets what the operation cost as `extensions.cost` = { upstreamCalls,
 * cacheHits, joinedInFlight, joinedRemote, upstreamMs, overheadMs, totalMs, estimatedCostUsd }, so a
 * developer sees in Sandbox whether a query hit the cache, joined another caller's call or
 * waited on DeepSeek.
 */
export function operationPlugin(options: OperationPluginOptions = {}): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, source, document, operation, operationName, contextValue }) {
          if (operation) contextValue.operation.resolved(operation.operation, operationName ?? undefined);
          contextValue.hotAnswer?.resolved(operation);
          // Under the name the request gave (or none), not the one Apollo resolved.
          options.learn?.(source, request.operationName, document, operation);
        },
        async willSendResponse({ request, response, contextValue, overallCachePolicy }) {
          const single = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const policy = overallCachePolicy.policyIfCacheable();
          const settled = settleOperation(contextValue, {
            method: request.http?.method,
            single: single !== undefined,
            data: single?.data,
            errors: single?.errors,
            status: response.http.status,
            policy: policy && { maxAge: policy.maxAge, scope: policy.scope },
            extensionsEmpty: single?.extensions === undefined || Object.keys(single.extensions).length === 0,
          });
          if (settled.status !== undefined) response.http.status = settled.status;
          for (const [name, value] of settled.headers) response.http.headers.set(name, value);
          if (single) {
            // Object.assign, not a spread followed by `cost`: slow on Node 20 (see withRequest in src/transport/types.ts).
            single.extensions = Object.assign({}, single.extensions, { cost: settled.cost });
          }
        },
      };
    },
  };
}

export interface OperationPluginOptions {
  /** Called with each operation Apollo resolved (after validation): see src/graphql/direct-operations.ts. */
  learn?: (source: string | undefined, operationName: string | null | undefined, document: DocumentNode | undefined, operation: OperationDefinitionNode | null | undefined) => void;
}
