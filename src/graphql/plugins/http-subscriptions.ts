import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { ErrorCode } from '../../errors';
import type { GraphQLContext } from '../context';

/**
 * A subscription sent as a plain HTTP request gets a typed refusal that says where
 * subscriptions are served, before anything runs (graphql-js would otherwise execute it
 * like a query and the field resolver would fail without its event stream).
 */
export function httpSubscriptionsPlugin(where: { webSocketPath: string; ssePath: string }): ApolloServerPlugin<GraphQLContext> {
  const message =
    `Subscriptions are not served as plain HTTP requests: subscribe over WebSocket (graphql-ws, protocol graphql-transport-ws) ` +
    `at ${where.webSocketPath}, or over Server-Sent Events (graphql-sse) with POST ${where.ssePath} and 'Accept: text/event-stream'.`;
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === 'subscription') {
            throw new GraphQLError(message, { extensions: { code: ErrorCode.BAD_REQUEST, http: { status: 400 } } });
          }
        },
      };
    },
  };
}
