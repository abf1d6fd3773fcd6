import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ExecutionResult } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fastify';
import { ErrorCode } from '../errors';
import type { GraphQLContext } from '../graphql/context';
import type { OperationPipeline } from '../graphql/pipeline';
import type { Logger } from '../telemetry/logger';
import { credentialsOf } from './credentials';
import { csrfRefusal } from './csrf';
import { responseSignal } from './disconnect';
import { acceptsEventStream, challengeOf, errorBody, EVENT_STREAM, headerOf, jsonError, requestProblem, statusOf } from './operation-request';

/** GraphQL over Server-Sent Events, for clients that cannot open a WebSocket. */
export const SSE_PATH = '/graphql/stream';

type SseContext = GraphQLContext & Record<PropertyKey, unknown>;

/**
 * Subscriptions over SSE (graphql-sse, "distinct connections" mode: one HTTP request per
 * subscription, `Accept: text/event-stream`), beside graphql-ws on `/graphql`, through the
 * same operation pipeline (checks, limits, context, error formatting, telemetry). A client
 * that disconnects ends its subscription (and, if it was the last, the upstream stream).
 * graphql-sse's "single connection" mode (PUT reservations, then operations by token) is
 * not served. Returns an Apollo plugin that ends open SSE responses when the server drains.
 */
export interface SseRoute {
  /** Open SSE responses now. */
  readonly open: number;
  /** Shutdown, last step: ends every open SSE response, like a client disconnect would. */
  cut(): void;
}

export function registerSseRoute(app: FastifyInstance, options: { pipeline: OperationPipeline; logger: Logger }): SseRoute {
  const { pipeline } = options;
  const logger = options.logger.child({ component: 'sse' });
  const open = new Set<FastifyReply>();
  // The context of each running request, from onSubscribe to onComplete.
  const contexts = new WeakMap<object, GraphQLContext>();

  const handler = createHandler<SseContext>({
    onSubscribe: async (req, params) => {
      const subscribed = await pipeline.subscribe(
        {
          transport: 'sse',
          logger: logger.child({ reqId: req.raw.id }),
          signal: responseSignal(req.context.reply.raw),
          headers: (name) => headerOf(req.raw, name),
          authorization: headerOf(req.raw, 'authorization'),
          address: req.raw.ip,
        },
        params,
      );
      if ('refused' in subscribed) return jsonError(statusOf(subscribed.refused[0]), subscribed.errors, challengeOf(subscribed.refused[0]));
      contexts.set(req.raw, subscribed.context);
      // graphql-sse takes the context from here when onSubscribe returns the arguments.
      return subscribed.args as typeof subscribed.args & { contextValue: SseContext };
    },
    onNext: (_ctx, req, result) => {
      const context = contexts.get(req.raw);
      // Incremental-delivery patches never come from this schema (no @defer/@stream).
      if (!context || 'hasNext' in result) return undefined;
      return pipeline.next(context, result) as ExecutionResult | undefined;
    },
    onComplete: (_ctx, req) => {
      const context = contexts.get(req.raw);
      contexts.delete(req.raw);
      if (context) pipeline.complete(context);
    },
  });

  app.route({
    url: SSE_PATH,
    method: ['GET', 'POST'],
    handler: async (request, reply) => {
      if (!acceptsEventStream(request)) {
        return reply
          .code(406)
          .header('content-type', 'application/json; charset=utf-8')
          .send(
            errorBody(
              `${SSE_PATH} streams subscriptions as Server-Sent Events: send 'Accept: ${EVENT_STREAM}' and the operation ` +
                `(POST a JSON body { query, variables }, or GET with query parameters). Queries and mutations go to /graphql.`,
            ),
          );
      }
      // A stream starts paid work: a page on another site must not be able to start one.
      const refusal = csrfRefusal(request.headers) ?? credentialsOf(request).refusal ?? requestProblem(request, SSE_PATH);
      if (refusal) return reply.code(400).header('content-type', 'application/json; charset=utf-8').send(errorBody(refusal));
      // graphql-sse serves "distinct connections" only for an Accept of exactly this.
      request.headers.accept = EVENT_STREAM;
      open.add(reply);
      reply.raw.once('close', () => open.delete(reply));
      try {
        await handler(request, reply);
      } catch (error) {
        logger.error({ err: error }, 'GraphQL over SSE request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          reply.raw.end(JSON.stringify(errorBody('Internal server error', ErrorCode.INTERNAL_SERVER_ERROR)));
        } else {
          reply.raw.end();
        }
      }
    },
  });

  return {
    get open() {
      return open.size;
    },
    // Ending a response ends its subscription like a client disconnect would (and aborts an
    // unshared upstream stream).
    cut: () => {
      for (const reply of open) reply.raw.destroy();
    },
  };
}
