import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { ErrorCode } from '../../errors';
import type { GraphQLContext } from '../context';

/**
 * A subscription sent as a plain HTTP request (asking for JSON, not for a stream) gets a
 * typed refusal that says how to ask for one, before anything runs (graphql-js would
 * otherwise execute it like a query and the field resolver would fail without its event
 * stream).
 */
export function httpSubscriptionsPlugin(where: { webSocketPath: string; ssePath: string }): ApolloServerPlugin<GraphQLContext> {
  const message =
    `A subscription streams its events: subscribe over WebSocket (graphql-ws, protocol graphql-transport-ws) at ${where.webSocketPath}, ` +
    `or POST it to ${where.webSocketPath} with 'Accept: multipart/mixed;subscriptionSpec="1.0", application/json' (Apollo's multipart protocol) ` +
    `or 'Accept: text/event-stream' (GraphQL over SSE, also at ${where.ssePath}).`;
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
