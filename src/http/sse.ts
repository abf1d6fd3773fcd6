import type { ApolloServerPlugin } from '@apollo/server';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GraphQLError, GraphQLSchema } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fastify';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import type { GatewayServices, GraphQLContext } from '../graphql/context';
import { queryLimitRules } from '../graphql/limits';
import { formatErrors, prepareSubscription, subscriptionContext, type FormatError } from '../graphql/subscription-operation';
import { SubscriptionTelemetry } from '../graphql/subscription-telemetry';

/** GraphQL over Server-Sent Events, for clients that cannot open a WebSocket. */
export const SSE_PATH = '/graphql/stream';

const OPERATION = 'sse';

/**
 * Subscriptions over SSE (graphql-sse, "distinct connections" mode: one HTTP request per
 * subscription, `Accept: text/event-stream`), beside graphql-ws on `/graphql`. The same
 * checks, limits, context, error formatting and telemetry as the WebSocket transport; a
 * client that disconnects ends its subscription (and, if it was the last, the upstream
 * stream). Returns an Apollo plugin that ends open SSE responses when the server drains.
 */
export function registerSseRoute(
  app: FastifyInstance,
  options: { schema: GraphQLSchema; services: GatewayServices; logger: Logger; formatError: FormatError; instruments: Instruments },
): ApolloServerPlugin<GraphQLContext> {
  const { schema, services, formatError } = options;
  const logger = options.logger.child({ component: 'sse' });
  const telemetry = new SubscriptionTelemetry(logger, options.instruments);
  const limitRules = queryLimitRules(services.config.graphql);
  const open = new Set<FastifyReply>();

  const handler = createHandler<GraphQLContext & Record<PropertyKey, unknown>>({
    schema,
    onSubscribe: (req, params) => {
      telemetry.start(req.raw, OPERATION, params.operationName);
      const prepared = prepareSubscription(schema, limitRules, params, 'GraphQL over SSE');
      if ('errors' in prepared) {
        const errors = formatErrors(formatError, prepared.errors);
        telemetry.finish(req.raw, OPERATION, errors);
        // Request-level errors answer like Apollo over HTTP: 400 with a JSON body, no stream.
        return [JSON.stringify({ errors }), { status: 400, statusText: 'Bad Request', headers: { 'content-type': 'application/json; charset=utf-8' } }];
      }
      // graphql-sse takes the context from here when onSubscribe returns the arguments.
      const contextValue = subscriptionContext(
        services,
        logger.child({ reqId: req.raw.id }),
        disconnectSignal(req.context.reply),
        telemetry.traceContext(req.raw, OPERATION),
      ) as GraphQLContext & Record<PropertyKey, unknown>;
      return { schema, ...prepared, contextValue };
    },
    onNext: (_ctx, req, result) => {
      if (!result.errors || result.errors.length === 0) {
        telemetry.next(req.raw, OPERATION, undefined);
        return undefined;
      }
      const errors = formatErrors(formatError, result.errors);
      telemetry.next(req.raw, OPERATION, errors);
      return { ...result, errors: errors as unknown as GraphQLError[] };
    },
    onComplete: (_ctx, req) => telemetry.finish(req.raw, OPERATION),
  });

  app.route({
    url: SSE_PATH,
    method: ['GET', 'POST', 'PUT', 'DELETE'],
    handler: async (request, reply) => {
      open.add(reply);
      reply.raw.once('close', () => open.delete(reply));
      try {
        await handler(request, reply);
      } catch (error) {
        logger.error({ err: error }, 'GraphQL over SSE request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          reply.raw.end(JSON.stringify({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] }));
        } else {
          reply.raw.end();
        }
      }
    },
  });

  return {
    serverWillStart: async () => ({
      // A stream can run for minutes; on shutdown its response is ended, which ends the
      // subscription like a client disconnect would (and aborts an unshared upstream stream).
      drainServer: async () => {
        for (const reply of open) reply.raw.destroy();
      },
    }),
  };
}

/** Aborted when the response closes before it has finished (the client went away). */
function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller.signal;
}
