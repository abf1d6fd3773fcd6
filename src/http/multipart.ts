import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import { ErrorCode } from '../errors';
import type { OperationPipeline, WarmUpInit } from '../graphql/pipeline';
import { subscribeEvents } from '../graphql/subscription-events';
import { requestLogger, type Logger } from '../telemetry/logger';
import { credentialsOf } from './credentials';
import { csrfRefusal } from './csrf';
import { responseSignal } from './disconnect';
import { errorBody, refusalHeaders, headerOf, MULTIPART_SUBSCRIPTION, readOperation, statusOf } from './operation-request';
import type { StreamResponses } from './stream-responses';

/** Each part's delimiter and headers: written after every part, so a client parses a part as soon as it arrives. */
const NEXT_PART = '\r\n--graphql\r\ncontent-type: application/json\r\n\r\n';
/** The closing delimiter. */
const LAST_PART = '\r\n--graphql--\r\n';
/** A heartbeat: an empty object, which clients skip. */
const HEARTBEAT = '{}';

export interface MultipartOptions {
  pipeline: OperationPipeline;
  logger: Logger;
  streams: StreamResponses;
  /** The warm-up's marks for a request that carries them (its caller, no quota or telemetry, the stand-in's services). */
  warmUp?: (headers: IncomingHttpHeaders) => WarmUpInit | undefined;
  /** How often an idle stream sends a heartbeat part (STREAM_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** The path served, named in refusals. */
  path: string;
}

/**
 * Apollo's multipart HTTP protocol for subscriptions, on `/graphql` itself: a POST (or a
 * GET) with `Accept: multipart/mixed;subscriptionSpec="1.0", application/json`, as Apollo
 * Client's plain HttpLink, Apollo Kotlin and Apollo iOS send a subscription, is answered
 * with `multipart/mixed;boundary="graphql";subscriptionSpec="1.0"`: one JSON part per
 * event, `{"payload": <the GraphQL result>}`, an empty `{}` part every `heartbeatMs` while
 * nothing else is sent, and the closing delimiter when the subscription completes. An error
 * that ends the stream for a reason other than GraphQL execution (an internal failure) is
 * the protocol's transport error, `{"payload": null, "errors": [...]}`.
 *
 * The operation goes through the same pipeline as over WebSocket and SSE (checks, limits,
 * credentials, context, formatting, telemetry). A request refused before it runs (CSRF,
 * shape, parse, validation, credentials) gets a JSON error with its HTTP status, as Apollo
 * answers over HTTP. Events are pulled from the subscription only as fast as the client
 * reads them (see ResponseFlow); a client that goes away ends its subscription.
 */
export function createMultipartHandler(options: MultipartOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const { pipeline, streams, heartbeatMs, path } = options;
  const logger = options.logger.child({ component: 'multipart' });

  return async (request, reply) => {
    const read = readOperation(request, path);
    // A stream starts paid work: a page on another site must not be able to start one.
    const refusal = csrfRefusal(request.headers) ?? credentialsOf(request).refusal ?? ('problem' in read ? read.problem : undefined);
    if (refusal || 'problem' in read) {
      await reply.code(400).header('content-type', 'application/json; charset=utf-8').send(errorBody(refusal ?? 'Bad request'));
      return;
    }
    const response = reply.raw;
    const subscribed = await pipeline.subscribe(
      {
        transport: 'multipart',
        logger: requestLogger(logger, request.id),
        signal: responseSignal(response),
        headers: (name) => headerOf(request.raw, name),
        authorization: headerOf(request.raw, 'authorization'),
        address: request.ip,
        ...options.warmUp?.(request.headers),
      },
      read.operation,
    );
    if ('refused' in subscribed) {
      reply.headers(refusalHeaders(subscribed.refused[0]));
      await reply.code(statusOf(subscribed.refused[0])).header('content-type', 'application/json; charset=utf-8').send({ errors: subscribed.errors });
      return;
    }
    const { context } = subscribed;
    // The field's subscribe resolver runs here: an input it refuses (BAD_USER_INPUT) comes
    // back as one result with errors, streamed like any other event.
    let source: Awaited<ReturnType<typeof subscribeEvents>>;
    try {
      source = await subscribeEvents(subscribed.args);
    } catch (error) {
      // graphql-js reports resolver errors as a result; a throw here is a bug: end the
      // operation, and let the error handler answer a masked 500.
      pipeline.complete(context, [new GraphQLError('Internal server error', { originalError: error as Error, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } })]);
      throw error;
    }

    reply.hijack();
    const flow = streams.track(response, 'multipart');
    response.writeHead(200, {
      ...headersOf(reply),
      'content-type': MULTIPART_SUBSCRIPTION,
      'cache-control': 'no-cache, no-store',
      // Proxies (nginx) must pass each part on as it comes.
      'x-accel-buffering': 'no',
    });
    flow.write(NEXT_PART);
    const heartbeat = setInterval(() => flow.write(HEARTBEAT + NEXT_PART), heartbeatMs);
    const events: AsyncIterator<ExecutionResult> = Symbol.asyncIterator in source ? source : single(source);
    // A client that goes away ends the subscription at once, even while it waits for an event.
    const stop = (): void => void events.return?.();
    response.once('close', stop);
    let failure: GraphQLError | undefined;
    try {
      for (;;) {
        await flow.flushed();
        if (response.destroyed) break;
        const event = await events.next();
        if (event.done) break;
        const result: ExecutionResult | FormattedExecutionResult = pipeline.next(context, event.value) ?? event.value;
        flow.write(JSON.stringify({ payload: result }) + NEXT_PART);
      }
    } catch (error) {
      // The resolvers turn every stream failure into a GraphQL error event; anything
      // thrown here is unexpected, and masked like any internal error.
      logger.error({ err: error }, 'multipart subscription failed');
      failure = new GraphQLError('Internal server error', { originalError: error as Error, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } });
    } finally {
      clearInterval(heartbeat);
      response.off('close', stop);
      const errors = pipeline.complete(context, failure ? [failure] : []);
      if (!response.destroyed) response.end((failure ? JSON.stringify({ payload: null, errors }) : HEARTBEAT) + LAST_PART);
      flow.close();
    }
  };
}

/** The headers Fastify's hooks set on the reply (CORS), for a response written directly. */
function headersOf(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

/** One result as an iterator of one event. */
function single(result: ExecutionResult): AsyncIterator<ExecutionResult> {
  let sent = false;
  return {
    next: async () => {
      if (sent) return { value: undefined, done: true };
      sent = true;
      return { value: result, done: false };
    },
  };
}
