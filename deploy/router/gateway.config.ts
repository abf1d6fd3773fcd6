/**
 * Hive Gateway in front of the deepseek subgraph, for its CLI (`@graphql-hive/gateway`,
 * not a dependency of this repository; the CLI reads TypeScript config files itself):
 *
 *   rover supergraph compose --config deploy/router/supergraph.yaml --output supergraph.graphql
 *   npx @graphql-hive/gateway supergraph    # in a directory holding this file and supergraph.graphql
 *
 * Outside the repository's typecheck (tsconfig.json includes src, test, bench and scripts
 * only); test/deploy/manifests.test.ts loads it and checks what it does.
 */
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  // From `rover supergraph compose`, relative to the gateway's working directory; the
  // subgraph's routing_url there is the Kubernetes Service (http://deepseek-gateway:4000/graphql).
  supergraph: './supergraph.graphql',

  // The subgraph verifies every caller itself (AUTH_MODE=jwt) and continues the W3C trace.
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      return {
        authorization: request.headers.get('authorization'),
        traceparent: request.headers.get('traceparent'),
        tracestate: request.headers.get('tracestate'),
      };
    },
  },

  // Subscriptions reach the subgraph as GraphQL over SSE on /graphql. The transport's
  // default for a subscription is a GET, which the subgraph's CSRF prevention refuses
  // without a preflight header; a JSON POST is accepted (test/e2e/router-streaming.test.ts).
  transportEntries: {
    '*.http': {
      options: {
        method: 'POST',
      },
    },
  },
});
