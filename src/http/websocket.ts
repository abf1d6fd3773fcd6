import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Caller } from '../auth';
import { ErrorCode, UnauthenticatedError } from '../errors';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { GraphQLContext } from '../graphql/context';
import type { OperationPipeline, WarmUpInit } from '../graphql/pipeline';
import { subscribeEvents } from '../graphql/subscription-events';
import type { ByteBudget } from '../lib/byte-budget';
import { lazyChild, type Logger } from '../telemetry/logger';
import { socketSignal } from './disconnect';

export interface WebSocketTransportOptions {
  /** The HTTP server Fastify listens with: WebSocket upgrades on `path` are taken from it. */
  server: Server;
  path: string;
  /** The one operation pipeline (checks, limits, context, error formatting, telemetry). */
  pipeline: OperationPipeline;
  logger: Logger;
  /** Largest incoming WebSocket message (a subscribe payload), like the HTTP body limit. */
  maxPayloadBytes: number;
  /** Subscriptions one connection may have running at once (MAX_SUBSCRIPTIONS_PER_CONNECTION). */
  maxSubscriptionsPerConnection: number;
  /** A connection that has not sent `connection_init` this long after opening is closed (4408). */
  connectionInitTimeoutMs: number;
  /** On shutdown, sockets that have not finished the close handshake by then are cut. Default 1000 ms. */
  closeTimeoutMs?: number;
  /**
   * The replica's request-byte budget (HTTP_MAX_BODY_BYTES_IN_FLIGHT): a subscription holds
   * its `subscribe` message's size from then until it ends, as an HTTP request holds its body.
   */
  bodyBudget?: ByteBudget;
  /**
   * The warm-up's marks for a connection whose upgrade request carries them (its caller, no
   * quota or telemetry, the stand-in's services), as the HTTP transports take them.
   */
  warmUp?: (headers: IncomingHttpHeaders) => WarmUpInit | undefined;
}

export interface WebSocketTransport {
  /** Subscriptions running now, on every connection. */
  readonly running: number;
  /**
   * Shutdown, first step: new subscriptions are refused (OVERLOADED: the client should
   * resubscribe, to another replica); running ones go on. Resolves once none is running.
   */
  drain(): Promise<void>;
  /** Shutdown, last step: closes every socket (1001 Going away), ending what still runs. Idempotent. */
  close(): Promise<void>;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws, protocol `graphql-transport-ws`, which
 * Apollo Sandbox, Apollo Client's GraphQLWsLink and Apollo Router speak) on the same HTTP
 * server and path as the HTTP endpoint. Only subscription operations are served here:
 * queries and mutations go over HTTP. Every subscription goes through the operation
 * pipeline: parse, validation and variable errors get Apollo's request-level codes (sent
 * as graphql-ws `error` messages, the protocol's place for them); every other error is
 * formatted like over HTTP, so keys and raw upstream bodies never reach a client.
 */
export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  const { pipeline } = options;
  const logger = options.logger.child({ component: 'websocket' });
  const wsServer = new WebSocketServer({ server: options.server, path: options.path, maxPayload: options.maxPayloadBytes });
  // graphql-ws handles the first server error once; a second one must not crash the process.
  wsServer.on('error', (error) => logger.error({ err: error }, 'WebSocket server error'));
  // The size of the message each socket's graphql-ws handler is reading: set just before
  // it runs, which calls onSubscribe synchronously, so onSubscribe reads its own message's.
  const messageBytes = new WeakMap<WebSocket, number>();
  // Registered before graphql-ws's own handler, so it sees every socket first.
  wsServer.on('connection', (socket: WebSocket) => refuseServerMessages(socket, messageBytes));
  // What each running subscription holds of the byte budget.
  const heldBytes = new WeakMap<GraphQLContext, number>();
  const budget = options.bodyBudget;

  // The contexts of each connection's running subscriptions (operation ids are unique per
  // connection only); gone with the socket.
  const running = new WeakMap<WebSocket, Map<string, GraphQLContext>>();
  const contextOf = (socket: WebSocket, id: string): GraphQLContext | undefined => running.get(socket)?.get(id);
  const forget = (socket: WebSocket, id: string): GraphQLContext | undefined => {
    const context = contextOf(socket, id);
    if (context) {
      running.get(socket)?.delete(id);
      releaseSlot(socket);
      budget?.give(heldBytes.get(context) ?? 0);
    }
    return context;
  };
  // Subscriptions each connection runs or is setting up (for MAX_SUBSCRIPTIONS_PER_CONNECTION).
  const slots = new WeakMap<WebSocket, number>();
  const releaseSlot = (socket: WebSocket): void => {
    slots.set(socket, Math.max(0, (slots.get(socket) ?? 1) - 1));
  };
  // The caller of each connection, from its connection_init.
  const callers = new WeakMap<WebSocket, Caller>();
  const authenticator = pipeline.services.authenticator;

  let draining = false;
  let total = 0;
  let idle: (() => void) | undefined;
  const started = (): void => {
    total += 1;
  };
  const ended = (): void => {
    total -= 1;
    if (total === 0) idle?.();
  };

  const cleanup = useServer<Record<string, unknown> | undefined>(
    {
      // Never put internal error text in a close reason, in development either.
      isProd: true,
      // Each event completed without a full graphql-js execute when the selection allows.
      subscribe: subscribeEvents,
      // A socket that never says hello is closed (4408), not held open.
      connectionInitWaitTimeout: options.connectionInitTimeoutMs,
      // Who is calling is decided once per connection, from the `connection_init` payload's
      // `authorization` (the convention of Apollo Client and Sandbox), else its `token`
      // (what Apollo Router's passthrough subscriptions send: the client's Authorization
      // header), else the upgrade request's own `Authorization` header (a server-side
      // client). Bad credentials close the connection (4403 Forbidden); none leave a caller
      // without scopes under AUTH_MODE=jwt.
      onConnect: async (ctx) => {
        const authorization = connectionAuthorization(ctx.connectionParams, ctx.extra.request.headers.authorization);
        try {
          callers.set(ctx.extra.socket, await authenticator.authenticate({ authorization, address: addressOf(ctx.extra.request) }));
          return true;
        } catch (error) {
          if (!(error instanceof UnauthenticatedError)) throw error;
          logger.debug({ reason: error.reason }, 'WebSocket connection refused: bad credentials');
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const socket = ctx.extra.socket;
        // Read first, before anything is awaited (see messageBytes).
        const bytes = messageBytes.get(socket) ?? 0;
        const init = {
          transport: 'websocket' as const,
          logger: lazyChild(logger, 'subscriptionId', loggedId(id)),
          signal: socketSignal(socket),
          headers: traceHeaders(payload.extensions, ctx.connectionParams),
          address: addressOf(ctx.extra.request),
          caller: callers.get(socket),
          ...options.warmUp?.(ctx.extra.request.headers),
        };
        if (draining) return (await pipeline.reject(init, shuttingDown())).refused;
        // Each subscription holds a stream buffer: bound how many one connection runs. The
        // slot is taken before anything is awaited, so a burst cannot slip past the bound.
        const held = slots.get(socket) ?? 0;
        if (held >= options.maxSubscriptionsPerConnection) {
          return (await pipeline.reject(init, tooManySubscriptions(options.maxSubscriptionsPerConnection))).refused;
        }
        if (budget && !budget.take(bytes)) return (await pipeline.reject(init, overBodyBudget())).refused;
        slots.set(socket, held + 1);
        let subscribed: Awaited<ReturnType<OperationPipeline['subscribe']>>;
        try {
          subscribed = await pipeline.subscribe(init, payload);
        } catch (error) {
          releaseSlot(socket);
          budget?.give(bytes);
          throw error;
        }
        // graphql-ws formats these through `onError` and sends them as the `error` message;
        // the operation has already ended.
        if ('refused' in subscribed) {
          releaseSlot(socket);
          budget?.give(bytes);
          return subscribed.refused;
        }
        heldBytes.set(subscribed.context, bytes);
        let contexts = running.get(socket);
        if (!contexts) running.set(socket, (contexts = new Map()));
        contexts.set(id, subscribed.context);
        started();
        return subscribed.args;
      },
      onNext: (ctx, id, _payload, _args, result) => {
        const context = contextOf(ctx.extra.socket, id);
        return context ? pipeline.next(context, result) : undefined;
      },
      onError: (ctx, id, _payload, errors): GraphQLFormattedError[] => {
        const context = forget(ctx.extra.socket, id);
        if (!context) return pipeline.format(errors);
        ended();
        return pipeline.complete(context, errors);
      },
      onComplete: (ctx, id) => {
        const context = forget(ctx.extra.socket, id);
        if (!context) return;
        ended();
        pipeline.complete(context);
      },
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
    get running() {
      return total;
    },
    drain: () => {
      draining = true;
      if (total === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idle = resolve;
      });
    },
    // Closing the sockets also ends their subscriptions (graphql-ws calls `return()` on
    // each), which releases the shared upstream streams.
    close,
  };
}

function shuttingDown(): GraphQLError {
  return new GraphQLError('This replica is shutting down; subscribe again (another replica will serve it).', {
    extensions: { code: ErrorCode.OVERLOADED },
  });
}

function overBodyBudget(): GraphQLError {
  return new GraphQLError(
    'The gateway is holding as many request bytes as it may (HTTP_MAX_BODY_BYTES_IN_FLIGHT); subscribe again in a moment.',
    { extensions: { code: ErrorCode.OVERLOADED } },
  );
}

function tooManySubscriptions(max: number): GraphQLError {
  return new GraphQLError(
    `A connection may run at most ${max} subscriptions at once (MAX_SUBSCRIPTIONS_PER_CONNECTION); complete one first or open another connection.`,
    { extensions: { code: ErrorCode.BAD_REQUEST, limit: 'MAX_SUBSCRIPTIONS_PER_CONNECTION' } },
  );
}

/** Longest trace header value taken from a message (a `traceparent` is 55 characters). */
const MAX_TRACE_HEADER_LENGTH = 512;

/**
 * W3C trace context for a WebSocket subscription, which has no headers of its own: the
 * subscribe message's `extensions.traceparent` (and `tracestate`), else the connection's
 * (`connection_init` payload). Only strings of reasonable length are read; the propagator
 * ignores malformed ones.
 */
function traceHeaders(extensions: unknown, connectionParams: unknown): (name: string) => string | undefined {
  const read = (source: unknown, name: string): string | undefined => {
    const value = source !== null && typeof source === 'object' ? (source as Record<string, unknown>)[name] : undefined;
    return typeof value === 'string' && value.length <= MAX_TRACE_HEADER_LENGTH ? value : undefined;
  };
  return (name) => {
    if (name !== 'traceparent' && name !== 'tracestate') return undefined;
    // Both headers from the same place: a tracestate belongs to its traceparent.
    return read(extensions, 'traceparent') !== undefined ? read(extensions, name) : read(connectionParams, name);
  };
}

/** The client address behind a WebSocket's upgrade request. */
function addressOf(request: IncomingMessage): string {
  return request.socket.remoteAddress ?? 'unknown';
}

/** Message types only a server sends; graphql-ws answers a client sending one with 4500. */
/** Longest subscription id a log line carries as it is (the client picks it: graphql-ws bounds it only by the message size). */
const MAX_LOGGED_ID_CHARS = 128;

/** A subscription id for the logs: as sent, or its first `MAX_LOGGED_ID_CHARS` characters and its length. */
function loggedId(id: string): string {
  return id.length <= MAX_LOGGED_ID_CHARS ? id : `${id.slice(0, MAX_LOGGED_ID_CHARS)}…(${id.length} chars)`;
}

const SERVER_MESSAGE_TYPES = new Set(['connection_ack', 'next', 'error']);

/**
 * A client that sends a server's message type breaks the protocol: graphql-ws would throw
 * on it, close the socket as an internal error (4500) and print the stack to the console.
 * Close it as the client's error instead (4400 Bad Request), before graphql-ws reads it.
 */
function refuseServerMessages(socket: WebSocket, messageBytes: WeakMap<WebSocket, number>): void {
  const on = socket.on.bind(socket);
  socket.on = ((event: string, listener: (...args: unknown[]) => void) => {
    if (event !== 'message') return on(event, listener);
    return on('message', (data: unknown, isBinary: unknown) => {
      if (SERVER_MESSAGE_TYPES.has(messageType(data))) {
        socket.close(4400, 'Invalid message: a client may not send this message type');
        return;
      }
      messageBytes.set(socket, byteLength(data));
      listener(data, isBinary);
    });
  }) as WebSocket['on'];
}

/** The size of a `ws` message: a Buffer, an ArrayBuffer, or the fragments of one. */
function byteLength(data: unknown): number {
  if (Array.isArray(data)) return data.reduce((sum: number, piece: Buffer) => sum + piece.length, 0);
  if (data instanceof ArrayBuffer || Buffer.isBuffer(data)) return data.byteLength;
  return String(data).length;
}

/**
 * A server's type written as JSON: `"next"`, `"error"` or `"connection_ack"`. A message
 * without one of these tokens (nor a `\u` escape) cannot be of those types (inside a JSON
 * string a quote is escaped), so it is not parsed here a second time: graphql-ws parses
 * every message anyway, and a subscribe message may be megabytes of variables.
 */
const SERVER_TYPE_TOKEN = /"(?:next|error|connection_ack)"/;

function messageType(data: unknown): string {
  const text = String(data);
  // A `\u` escape could spell a type the token does not see (`"\u006eext"`): parse then too.
  if (!SERVER_TYPE_TOKEN.test(text) && !text.includes('\\u')) return '';
  try {
    const type = (JSON.parse(text) as { type?: unknown } | null)?.type;
    return typeof type === 'string' ? type : '';
  } catch {
    return ''; // graphql-ws refuses unparsable messages itself (4400)
  }
}

/** The credentials of a WebSocket connection (see `onConnect`): the first of its three places that holds a string. */
export function connectionAuthorization(params: Record<string, unknown> | undefined, header: string | undefined): string | undefined {
  for (const value of [params?.authorization, params?.Authorization, params?.token, header]) {
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return undefined;
}
