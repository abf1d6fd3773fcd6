import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ExecutionResult } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fastify';
import { ErrorCode } from '../errors';
import type { GraphQLContext } from '../graphql/context';
import type { OperationPipeline, WarmUpInit } from '../graphql/pipeline';
import { subscribeEvents } from '../graphql/subscription-events';
import { requestLogger, type Logger } from '../telemetry/logger';
import { credentialsOf } from './credentials';
import { csrfRefusal } from './csrf';
import { responseSignal } from './disconnect';
import type { ResponseFlow } from './response-flow';
import type { StreamResponses } from './stream-responses';
import { acceptsEventStream, errorBody, refusalHeaders, EVENT_STREAM, headerOf, jsonError, readOperation, statusOf } from './operation-request';

/** GraphQL over Server-Sent Events, for clients that cannot open a WebSocket. */
export const SSE_PATH = '/graphql/stream';

type SseContext = GraphQLContext & Record<PropertyKey, unknown>;

export interface SseOptions {
  pipeline: OperationPipeline;
  logger: Logger;
  streams: StreamResponses;
  /** The warm-up's marks for a request that carries them (its caller, no quota or telemetry, the stand-in's services). */
  warmUp?: (headers: IncomingHttpHeaders) => WarmUpInit | undefined;
}

/**
 * Subscriptions over SSE (graphql-sse, "distinct connections" mode: one HTTP request per
 * subscription, `Accept: text/event-stream`), served on `/graphql/stream` and, for a
 * subscription with that Accept, on `/graphql` itself (a federation router's default
 * transport to its subgraphs), through the same operation pipeline as every transport
 * (checks, limits, context, error formatting, telemetry). Events are pulled from the
 * subscription only as fast as the client reads them (see ResponseFlow); a client that
 * disconnects ends its subscription (and, if it was the last, the upstream stream).
 * graphql-sse's "single connection" mode (PUT reservations, then operations by token) is
 * not served. Returns the route handler.
 */
export function createSseHandler(options: SseOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const { pipeline, streams } = options;
  const logger = options.logger.child({ component: 'sse' });
  // The context and the flow control of each running request, from onSubscribe to onComplete.
  const contexts = new WeakMap<object, GraphQLContext>();
  const flows = new WeakMap<object, ResponseFlow>();

  const handler = createHandler<SseContext>({
    // Every document reaching graphql-sse was validated by OperationPipeline.subscribe (the
    // specified rules plus the query limits; onSubscribe returns its arguments or a refusal):
    // graphql-sse's own second validation would repeat that work on every stream.
    validate: () => [],
    // Each event completed without a full graphql-js execute when the selection allows.
    subscribe: subscribeEvents,
    onSubscribe: async (req, params) => {
      const subscribed = await pipeline.subscribe(
        {
          transport: 'sse',
          logger: requestLogger(logger, req.raw.id),
          signal: responseSignal(req.context.reply.raw),
          headers: (name) => headerOf(req.raw, name),
          authorization: headerOf(req.raw, 'authorization'),
          address: req.raw.ip,
          ...options.warmUp?.(req.raw.headers),
        },
        params,
      );
      if ('refused' in subscribed) return jsonError(statusOf(subscribed.refused[0]), subscribed.errors, refusalHeaders(subscribed.refused[0]));
      contexts.set(req.raw, subscribed.context);
      // graphql-sse takes the context from here when onSubscribe returns the arguments.
      return subscribed.args as typeof subscribed.args & { contextValue: SseContext };
    },
    // graphql-sse pulls events as fast as they come and queues them for the response:
    // pulled through the response's flow control instead, a slow reader's events wait in
    // the stream hub, where its per-subscriber cap applies.
    onOperation: (_ctx, req, _args, result) => {
      const flow = flows.get(req.raw);
      return flow && Symbol.asyncIterator in result ? flow.paced(result[Symbol.asyncIterator]()) : undefined;
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

  return async (request, reply) => {
    const path = request.routeOptions.url ?? SSE_PATH;
    if (!acceptsEventStream(request)) {
      await reply
        .code(406)
        .header('content-type', 'application/json; charset=utf-8')
        .send(
          errorBody(
            `${path} streams subscriptions as Server-Sent Events: send 'Accept: ${EVENT_STREAM}' and the operation ` +
              `(POST a JSON body { query, variables }, or GET with query parameters). Queries and mutations go to /graphql.`,
          ),
        );
      return;
    }
    // A stream starts paid work: a page on another site must not be able to start one.
    const read = readOperation(request, path);
    const refusal = csrfRefusal(request.headers) ?? credentialsOf(request).refusal ?? ('problem' in read ? read.problem : undefined);
    if (refusal) {
      await reply.code(400).header('content-type', 'application/json; charset=utf-8').send(errorBody(refusal));
      return;
    }
    // graphql-sse serves "distinct connections" only for an Accept of exactly this.
    request.headers.accept = EVENT_STREAM;
    const flow = streams.track(reply.raw, 'sse');
    flow.adopt(reply.raw);
    flows.set(request.raw, flow);
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
    } finally {
      flow.close();
      // Out of the WeakMap at once: its value leads back to its key (the response to its
      // request), which the young-generation collector would keep until a full collection.
      flows.delete(request.raw);
    }
  };
}
