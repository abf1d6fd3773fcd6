import type { Server } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import type { GatewayServices, GraphQLContext } from '../graphql/context';
import { queryLimitRules } from '../graphql/limits';
import { formatErrors, prepareSubscription, subscriptionContext, type FormatError } from '../graphql/subscription-operation';
import { SubscriptionTelemetry } from '../graphql/subscription-telemetry';

export interface SubscriptionServerOptions {
  /** The HTTP server Fastify listens with: WebSocket upgrades on `path` are taken from it. */
  server: Server;
  path: string;
  /** The same executable schema Apollo serves over HTTP. */
  schema: GraphQLSchema;
  services: GatewayServices;
  logger: Logger;
  /** The formatter Apollo uses (`createFormatError`), so errors look and mask the same. */
  formatError: FormatError;
  /** Largest incoming WebSocket message (a subscribe payload), like the HTTP body limit. */
  maxPayloadBytes: number;
  /** On shutdown, sockets that have not finished the close handshake by then are cut. Default 1000 ms. */
  closeTimeoutMs?: number;
  instruments: Instruments;
}

export interface SubscriptionServer {
  /** Apollo plugin: disposes the graphql-ws server when Apollo drains (`apollo.stop()`). */
  drainPlugin: ApolloServerPlugin<GraphQLContext>;
  /** Stops taking connections and closes every socket (1001 Going away). Idempotent. */
  close(): Promise<void>;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws, protocol `graphql-transport-ws`, which
 * Apollo Sandbox, Apollo Client's GraphQLWsLink and Apollo Router speak) on the same HTTP
 * server and path as the HTTP endpoint. Only subscription operations are served here:
 * queries and mutations go over HTTP, where Apollo's plugins and limits apply.
 *
 * Errors take the same path as over HTTP: parse, validation, operation and variable errors
 * get Apollo's request-level codes; every other error goes through `formatError`, so keys
 * and raw upstream bodies never reach a client.
 */
export function createSubscriptionServer(options: SubscriptionServerOptions): SubscriptionServer {
  const { schema, services, formatError } = options;
  const logger = options.logger.child({ component: 'subscriptions' });
  const wsServer = new WebSocketServer({ server: options.server, path: options.path, maxPayload: options.maxPayloadBytes });
  // graphql-ws handles the first server error once; a second one must not crash the process.
  wsServer.on('error', (error) => logger.error({ err: error }, 'WebSocket server error'));

  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] => formatErrors(formatError, errors);

  const log = new SubscriptionTelemetry(logger, options.instruments);
  const limitRules = queryLimitRules(services.config.graphql);

  const cleanup = useServer<Record<string, unknown> | undefined>(
    {
      schema,
      // Never put internal error text in a close reason, in development either.
      isProd: true,
      onSubscribe: (ctx, id, payload) => {
        log.start(ctx, id, payload.operationName);
        const prepared = prepareSubscription(schema, limitRules, payload, 'WebSocket');
        if ('errors' in prepared) return prepared.errors;
        return { schema, ...prepared };
      },
      context: (ctx, id): GraphQLContext =>
        subscriptionContext(services, logger.child({ subscriptionId: id }), connectionSignal(ctx.extra.socket), log.traceContext(ctx, id)),
      // Called for every chunk: only results carrying errors are reshaped.
      onNext: (ctx, id, _payload, _args, result) => {
        if (!result.errors || result.errors.length === 0) {
          log.next(ctx, id, undefined);
          return undefined;
        }
        const errors = format(result.errors);
        log.next(ctx, id, errors);
        return { ...result, errors };
      },
      onError: (ctx, id, _payload, errors) => {
        const formatted = format(errors);
        log.finish(ctx, id, formatted);
        return formatted;
      },
      onComplete: (ctx, id) => log.finish(ctx, id),
    },
    wsServer,
  );

  const closeTimeoutMs = options.closeTimeoutMs ?? 1000;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // dispose() sends 1001 to every client and waits for the close handshakes; a client
      // that never answers would hold shutdown for ws's 30 s close timeout.
      const cut = setTimeout(() => {
        for (const socket of wsServer.clients) socket.terminate();
      }, closeTimeoutMs);
      try {
        await cleanup.dispose();
      } finally {
        clearTimeout(cut);
      }
    })();
    return closing;
  };

  return {
    close,
    drainPlugin: {
      serverWillStart: async () => ({
        // Runs alongside Fastify's drain: closing the sockets also ends their subscriptions
        // (graphql-ws calls `return()` on each), which releases the shared upstream streams.
        drainServer: close,
      }),
    },
  };
}

const connectionSignals = new WeakMap<WebSocket, AbortSignal>();

/** One abort signal per connection, aborted when the socket closes (the `GraphQLContext.signal`). */
function connectionSignal(socket: WebSocket): AbortSignal {
  let signal = connectionSignals.get(socket);
  if (!signal) {
    const controller = new AbortController();
    if (socket.readyState === socket.CLOSED) controller.abort(new Error('client disconnected'));
    else socket.once('close', () => controller.abort(new Error('client disconnected')));
    signal = controller.signal;
    connectionSignals.set(socket, signal);
  }
  return signal;
}
