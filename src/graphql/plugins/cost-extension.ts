import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLContext } from '../context';

/**
 * Puts what the request cost into the response: `extensions.cost` = { upstreamCalls,
 * cacheHits, joinedInFlight, upstreamMs, overheadMs, totalMs, estimatedCostUsd } (see
 * `RequestCost`), so a developer sees in Sandbox whether a query hit the cache, joined
 * another caller's call or waited on DeepSeek.
 */
export function costExtensionPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          if (!contextValue.ledger || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          result.extensions = { ...result.extensions, cost: contextValue.ledger.finish() };
        },
      };
    },
  };
}
