import type { IncomingHttpHeaders } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { getOperationAST, GraphQLError, parse } from 'graphql';
import { ErrorCode } from '../errors';
import type { GatewayServices, GraphQLContext } from '../graphql/context';
import { createFormatError } from '../graphql/format-error';
import type { RawOperation } from '../graphql/limits';
import { DirectOperations, type DirectAnswer, type DirectOperationsStats } from '../graphql/direct-operations';
import { callerKeyOf, HotAnswers, type HotAnswerNotes } from '../graphql/hot-answers';
import { OperationPipeline, type Admitted, type OperationInit, type WarmUpInit } from '../graphql/pipeline';
import { httpSubscriptionsPlugin } from '../graphql/plugins/http-subscriptions';
import { operationPlugin } from '../graphql/plugins/operation';
import { buildSchema } from '../graphql/schema';
import type { Instruments } from '../telemetry/instruments';
import { requestLogger, type Logger } from '../telemetry/logger';
import { credentialsOf } from './credentials';
import { responseSignal } from './disconnect';
import { WARMUP_CALLER, WARMUP_FULL_PATH_HEADER, WARMUP_HEADER, WarmUpGate, warmUp, type WarmUpStandIn } from './warmup';
import { registerCors } from './cors';
import { registerBodyBudget } from './body-budget';
import { drainHttp } from './drain';
import { graphqlErrorHandler } from './error-handler';
import { GRAPHIQL_PATH, registerGraphiQL } from './graphiql';
import { registerHealthRoutes, type Readiness } from './health';
import { landingPage } from './landing-page';
import { registerHttpServerMetrics } from './metrics-route';
import { createMultipartHandler } from './multipart';
import { acceptsEventStream, acceptsMultipartSubscription } from './operation-request';
import { createSseHandler, SSE_PATH } from './sse';
import { StreamResponses } from './stream-responses';
import { createWebSocketTransport } from './websocket';

export const GRAPHQL_PATH = '/graphql';

/** How long an automatically persisted query stays registered. */
const APQ_TTL_SECONDS = 86_400;
/** Larger documents are not registered (a client sends them whole each time). */
const APQ_MAX_DOCUMENT_BYTES = 64 * 1024;

export interface HttpServer {
  app: FastifyInstance;
  apollo: ApolloServer<GraphQLContext>;
  /**
   * Stops accepting requests, lets in-flight operations (streams included) finish within
   * SHUTDOWN_GRACE_MS, cuts the rest, then stops Apollo.
   */
  stop(): Promise<void>;
  /**
   * Runs WARMUP_OPERATIONS synthetic operations over loopback to `url` (this server's own
   * address; src/http/warmup.ts); call it once, after listening and before saying ready.
   */
  warmUp(url: string): Promise<void>;
  /** Queries run without Apollo's pipeline, unless GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES=0. */
  directOperations?: DirectOperationsStats;
}

/**
 * The HTTP edge: Apollo Server 5 on Fastify 5 for queries and mutations, graphql-ws
 * subscriptions on the same `http.Server` and path, graphql-sse at `/graphql/stream`, and
 * the health and metrics routes. All three GraphQL transports hand their operations to
 * the one `OperationPipeline`. Fastify was chosen by measurement: see docs/architecture.md.
 */
export async function createHttpServer(options: {
  services: GatewayServices;
  logger: Logger;
  readiness: () => Readiness;
  instruments: Instruments;
  /** Starts the warm-up's DeepSeek stand-in (src/warmup-stand-in.ts); without it the warm-up sends no misses or streams. */
  startWarmUpStandIn?: () => Promise<WarmUpStandIn>;
}): Promise<HttpServer> {
  const { services, logger } = options;
  const warmUpGate = new WarmUpGate();
  // A warm-up request (this process's secret in its header, while the warm-up runs): the
  // warm-up caller, no quota or telemetry, and the stand-in's services when it asks for them.
  const warmUpInit = (headers: IncomingHttpHeaders): WarmUpInit | undefined =>
    warmUpGate.accepts(headers[WARMUP_HEADER]) ? { warmup: true, caller: WARMUP_CALLER, services: warmUpGate.servicesFor(headers) } : undefined;
  const production = services.config.nodeEnv === 'production';
  const limits = services.config.server;
  const app = Fastify({
    // A 1M-token context is about 3.5 MB of text; the default leaves room for that.
    bodyLimit: limits.bodyLimitBytes,
    logger: false,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // A client must send its whole request within requestTimeoutMs (a socket that sends a
    // few bytes and goes silent is cut, not held forever); answers may take as long as
    // DeepSeek does. Node checks these timers every connectionsCheckingInterval.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      headersTimeout: limits.requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) : limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
  });
  if (limits.maxConnections > 0) app.server.maxConnections = limits.maxConnections;
  registerHttpServerMetrics(app, options.instruments.meter, (request) => warmUpGate.accepts(request.headers[WARMUP_HEADER]));
  await registerCors(app, services.config.edge.corsOrigins);
  // Before any route: a route takes the error handler its context has when it is added.
  app.setErrorHandler(graphqlErrorHandler(logger, limits.bodyLimitBytes));
  // Before any route too: every route's bodies count against the replica's budget.
  registerBodyBudget(app, services.bodyBudget, limits.bodyLimitBytes);
  // While draining, every response closes its connection, so a keep-alive socket whose
  // request finishes during the drain does not hold the shutdown open.
  let draining = false;
  // A callback hook, not an async one: it runs on every response, and Fastify chains a
  // promise hook's result through a promise of its own.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) void reply.header('connection', 'close');
    done(null, payload);
  });
  const schema = buildSchema({ maxRepresentations: services.config.graphql.maxListItems });
  const pipeline = new OperationPipeline(schema, services, createFormatError(logger, { hideSchemaDetails: production }), options.instruments);

  // WebSocket upgrades on /graphql (graphql-ws); drained with Apollo through its plugin.
  const webSocket = createWebSocketTransport({
    server: app.server,
    path: GRAPHQL_PATH,
    pipeline,
    logger,
    maxPayloadBytes: limits.bodyLimitBytes,
    maxSubscriptionsPerConnection: services.config.streaming.maxSubscriptionsPerConnection,
    connectionInitTimeoutMs: services.config.streaming.connectionInitTimeoutMs,
    bodyBudget: services.bodyBudget,
    warmUp: warmUpInit,
  });
  // The same subscriptions over HTTP: GraphQL over SSE (on /graphql/stream and /graphql)
  // and Apollo's multipart protocol (on /graphql), with flow control for slow readers.
  const streams = new StreamResponses({ stallTimeoutMs: services.config.streaming.stallTimeoutMs, logger });
  const sse = createSseHandler({ pipeline, logger, streams, warmUp: warmUpInit });
  app.route({ url: SSE_PATH, method: ['GET', 'POST'], handler: sse });
  const multipart = createMultipartHandler({ pipeline, logger, streams, heartbeatMs: services.config.streaming.heartbeatMs, path: GRAPHQL_PATH, warmUp: warmUpInit });
  // Outside production, an explorer that works offline (Sandbox needs Apollo's CDN).
  const explorer = production ? undefined : registerExplorer(app, logger);

  // Queries Apollo has run before, run again without its pipeline (src/graphql/direct-operations.ts).
  const directMaxEntries = services.config.graphql.directOperationsMaxEntries;
  const direct = directMaxEntries > 0 ? new DirectOperations({ maxEntries: directMaxEntries, schema, formatError: pipeline.formatError }) : undefined;

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    logger: apolloLogger(logger),
    formatError: pipeline.formatError,
    includeStacktraceInErrorResponses: false,
    introspection: !production,
    csrfPrevention: true,
    validationRules: [...pipeline.limitRules],
    parseOptions: pipeline.parseOptions,
    // Automatic persisted queries (Apollo Client's persisted query link) in the cache's own
    // store (memory or Redis), a day at most, documents up to 64 KiB.
    persistedQueries: { cache: services.cache.documents({ ttlSeconds: APQ_TTL_SECONDS, maxDocumentBytes: APQ_MAX_DOCUMENT_BYTES }), ttl: APQ_TTL_SECONDS },
    // No "Did you mean …" in production: it would reveal the schema introspection hides.
    hideSchemaDetailsFromClientErrors: production,
    // main.ts owns signals: Apollo's own handlers would re-raise SIGTERM after stopping
    // and the process would exit 143 instead of 0.
    stopOnTerminationSignals: false,
    plugins: [
      landingPage({ production, explorerPath: explorer }),
      httpSubscriptionsPlugin({ webSocketPath: GRAPHQL_PATH, ssePath: SSE_PATH }),
      operationPlugin({ learn: direct && ((source, name, document, operation) => direct.learn(source, name, document, operation)) }),
    ],
  });
  await apollo.start();

  // What the handler learned before Apollo runs, on the request itself (a decorated field,
  // so every request object keeps one shape), not in a WeakMap keyed by the request: the
  // young-generation collector treats a WeakMap's values as strong, and this value leads
  // back to its key (the init's header reader), so each request the map had seen, and
  // everything hanging off it, survived every scavenge until the next full collection. At
  // c=10 misses, per scavenge (two A/B rounds, medians of 13): 1,680 -> 815 KB survived,
  // 1,300 -> 400 KB promoted, the pause 4.9-5.5 -> 3.5-3.8 ms (see docs/architecture.md).
  app.decorateRequest(PENDING, undefined);
  const pendingOf = (request: FastifyRequest): Pending | undefined => (request as PendingRequest)[PENDING];
  const initOf = (request: FastifyRequest, authorization: string | undefined): Omit<OperationInit, 'signal'> => {
    return {
      transport: 'http',
      ...warmUpInit(request.headers),
      logger: requestLogger(logger, request.id),
      // Checked before Apollo parses anything (the operation name's length, list sizes);
      // a POST naming a trusted document by hash gets its body here.
      raw: request.method === 'POST' ? (request.body as RawOperation) : rawFromQuery(request.query),
      authorization,
      address: request.ip,
      headers: (name) => {
        const value = request.headers[name];
        return Array.isArray(value) ? value[0] : value;
      },
    };
  };
  const apolloHandler = fastifyApolloHandler(apollo, {
      context: async (request, reply) => {
        const pending = pendingOf(request);
        let context: GraphQLContext;
        if (pending?.admitted) {
          context = pipeline.open(await pending.admitted.operation, Object.assign({}, pending.admitted.init, { signal: responseSignal(reply.raw) }));
        } else {
          const credentials = credentialsOf(request);
          if (credentials.refusal) {
            throw new GraphQLError(credentials.refusal, { extensions: { code: ErrorCode.BAD_REQUEST, http: { status: 400 } } });
          }
          context = await pipeline.begin({ ...initOf(request, credentials.authorization), signal: responseSignal(reply.raw) });
        }
        if (pending?.notes) {
          pending.notes.callerKey = callerKeyOf(context.caller, context.cacheScope);
          context.hotAnswer = pending.notes;
        }
        // Apollo ends the operation when its response is ready; a request it refuses before
        // running it (a batch, a missing query) ends here, once that refusal is written. (A
        // client that goes away mid-operation closes the response unfinished; Apollo still
        // ends that operation when it is done.)
        reply.raw.once('finish', () => {
          if (context.operation.ended) return;
          const status = reply.statusCode;
          const code = status >= 500 ? ErrorCode.INTERNAL_SERVER_ERROR : status >= 400 ? ErrorCode.BAD_REQUEST : undefined;
          context.operation.end({ status, codes: code ? [code] : [] });
        });
        return context;
      },
    });
  const hotAnswers = services.hotAnswers;
  const viaApollo = (request: FastifyRequest, reply: FastifyReply, self: FastifyInstance) =>
    // Apollo's handler is typed for its own route generics; it takes any request.
    apolloHandler.call(self, request as Parameters<typeof apolloHandler>[0], reply as Parameters<typeof apolloHandler>[1]);
  // A subscription asking for a stream (multipart or SSE) is streamed; everything else,
  // queries and mutations whatever they accept included, is Apollo's, unless a hot answer
  // (src/graphql/hot-answers.ts) or a direct operation (src/graphql/direct-operations.ts)
  // serves it.
  const graphqlHandler = async function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    const stream = streamRequested(request, pipeline);
    if (stream === 'multipart') return multipart(request, reply);
    if (stream === 'sse') return sse(request, reply);
    const fast = (hotAnswers || direct) && fastPathRequest(request, warmUpGate);
    if (!fast) return viaApollo(request, reply, this);
    const key = hotAnswers && HotAnswers.keyOf(fast.method, fast.raw, fast.accept);
    const pending: Pending = { notes: key !== undefined ? hotAnswers?.notes(key) : undefined };
    (request as PendingRequest)[PENDING] = pending;
    const hot = key !== undefined && hotAnswers !== undefined && hotAnswers.has(key);
    const plan = direct?.plan(fast.raw.query, fast.raw.operationName);
    const contentType = plan && direct?.contentType(fast.accept);
    const directable = plan !== undefined && typeof contentType === 'string';
    const credentials = hot || directable ? credentialsOf(request) : undefined;
    if (credentials && !credentials.refusal) {
      const init = initOf(request, credentials.authorization);
      pending.admitted = { init, operation: pipeline.admit(init) };
      // A refusal is Apollo's to send (its context function throws it again).
      const admitted = await pending.admitted.operation.catch(() => undefined);
      // Whatever goes wrong here (nothing should: the cache fails open), Apollo answers.
      const answer = admitted && hot && (await hotAnswers.answer(key, callerKeyOf(admitted.caller, admitted.cacheScope), admitted.operation).catch(() => undefined));
      if (admitted && answer) {
        admitted.operation.result([]);
        const cost = admitted.operation.end({ status: 200 });
        void reply.code(200).header('content-type', answer.contentType);
        if (answer.cacheControl !== undefined) void reply.header('cache-control', answer.cacheControl);
        if (answer.etag !== undefined) void reply.header('etag', answer.etag);
        // Byte for byte what Apollo sends: its fields in the same order, then a newline.
        return `{"data":${answer.dataJson},"extensions":{"cost":${JSON.stringify(cost)}}}\n`;
      }
      // Variables are coerced once the request is admitted (its raw limits checked); those
      // that do not coerce are Apollo's to refuse, with the admission already made.
      if (admitted && directable && direct!.coerces(plan, fast.raw.variables)) {
        const context = pipeline.open(admitted, Object.assign({}, init, { signal: responseSignal(reply.raw) }));
        if (pending.notes) {
          pending.notes.callerKey = callerKeyOf(context.caller, context.cacheScope);
          context.hotAnswer = pending.notes;
        }
        // Returned, not awaited: this frame is not held until the upstream answers.
        return direct!.run(plan, fast.raw.variables, context, { method: fast.method, contentType }).then(
          (answered: DirectAnswer) => {
            void reply.code(answered.status).header('content-type', answered.contentType);
            for (const [name, value] of answered.headers) void reply.header(name, value);
            if (pending.notes?.staged) hotAnswers?.keep(pending.notes, answered.contentType, reply.getHeader('cache-control'));
            return answered.body;
          },
          (error: unknown) => {
            if (!context.operation.ended) context.operation.end({ status: 500, codes: [ErrorCode.INTERNAL_SERVER_ERROR] });
            throw error;
          },
        );
      }
    }
    const body: unknown = await viaApollo(request, reply, this);
    if (pending.notes?.staged) hotAnswers?.keep(pending.notes, reply.getHeader('content-type'), reply.getHeader('cache-control'));
    return body;
  };
  // OPTIONS (CORS preflight) is answered by the CORS plugin.
  app.post(GRAPHQL_PATH, graphqlHandler);
  // GET, in a context of its own: a revalidation whose If-None-Match holds the ETag of a
  // cacheable answer (set by the operation plugin from its data) gets a 304 and no body.
  // (Not @fastify/etag: it hashes every response body, uncacheable ones included, and its
  // ETag would change with each response's `extensions.cost`.)
  await app.register(async (getRoutes) => {
    getRoutes.addHook('onSend', async (request, reply, payload) => {
      const etag = reply.getHeader('etag');
      if (typeof etag !== 'string' || reply.statusCode !== 200 || !matchesEtag(request.headers['if-none-match'], etag)) return payload;
      reply.code(304);
      return '';
    });
    getRoutes.get(GRAPHQL_PATH, graphqlHandler);
  });
  app.get('/', async (_request, reply) => reply.redirect(GRAPHQL_PATH, 302));
  registerHealthRoutes(app, options.readiness);

  return {
    app,
    apollo,
    directOperations: direct,
    warmUp: (url) =>
      warmUp({
        url,
        services,
        gate: warmUpGate,
        operations: services.config.warmupOperations,
        path: GRAPHQL_PATH,
        logger,
        startStandIn: options.startWarmUpStandIn,
      }),
    // The edge drains first (src/http/drain.ts); Apollo then has nothing left in flight.
    stop: async () => {
      draining = true;
      await drainHttp({ app, webSocket, streams, graceMs: limits.shutdownGraceMs, logger });
      await apollo.stop();
    },
  };
}

/**
 * GraphiQL at /graphiql from its npm packages (development dependencies: the production
 * image has none of them). Returns its path, or undefined when the packages are not
 * installed (a production-only install run outside production), which is logged.
 */
function registerExplorer(app: FastifyInstance, logger: Logger): string | undefined {
  try {
    registerGraphiQL(app, { path: GRAPHIQL_PATH, endpoint: GRAPHQL_PATH });
    return GRAPHIQL_PATH;
  } catch (error) {
    logger.warn({ err: error }, 'GraphiQL is not served: its packages are not installed (npm ci installs them)');
    return undefined;
  }
}

/**
 * The stream a request to /graphql asks for: `multipart` (Apollo's multipart subscription
 * Accept) or `sse` (`Accept: text/event-stream`), when its operation is a subscription, or
 * cannot be read (the streaming transport then answers what is wrong with it). Queries and
 * mutations always go to Apollo, which answers them as JSON whatever else the client accepts.
 */
function streamRequested(request: FastifyRequest, pipeline: OperationPipeline): 'multipart' | 'sse' | undefined {
  const stream = acceptsMultipartSubscription(request) ? 'multipart' : acceptsEventStream(request) ? 'sse' : undefined;
  if (!stream) return undefined;
  const raw = request.method === 'POST' ? (request.body as RawOperation | undefined) : rawFromQuery(request.query);
  if (typeof raw?.query !== 'string') return stream;
  const name = typeof raw.operationName === 'string' ? raw.operationName : undefined;
  // A subscription sent before is kept parsed: only a new document is parsed here.
  let document = pipeline.validDocument(raw.query);
  try {
    document ??= parse(raw.query, pipeline.parseOptions);
  } catch {
    return stream;
  }
  const operation = getOperationAST(document, name);
  return !operation || operation.operation === 'subscription' ? stream : undefined;
}

/**
 * What the handler learned before Apollo runs: the request's hot-answer notes, and its
 * admission (with the init it was admitted with) when it was admitted to try a hot answer
 * or a direct operation first, so Apollo's context opens that admission instead of
 * admitting it again.
 */
interface Pending {
  notes?: HotAnswerNotes;
  admitted?: { init: Omit<OperationInit, 'signal'>; operation: Promise<Admitted> };
}

/** The request field that holds its `Pending` (decorated on every request). */
const PENDING = Symbol('pending');
type PendingRequest = FastifyRequest & { [PENDING]?: Pending };

/**
 * A query request a hot answer or a direct operation may serve: a POST with a JSON body or
 * a GET with one of the headers that make it CSRF-safe (Apollo judges the others), whose
 * document is sent whole (no `extensions`: persisted-query hashes go through Apollo). Not
 * a router asking for an inline trace (its answer carries `extensions.ftv1`), nor a
 * warm-up request that must take the full path.
 */
function fastPathRequest(request: FastifyRequest, gate: WarmUpGate): { method: 'GET' | 'POST'; raw: RawOperation; accept: string | undefined } | undefined {
  const { headers } = request;
  if (headers['apollo-federation-include-trace'] !== undefined) return undefined;
  if (headers[WARMUP_FULL_PATH_HEADER] !== undefined && gate.accepts(headers[WARMUP_HEADER])) return undefined;
  const accept = typeof headers.accept === 'string' ? headers.accept : undefined;
  let raw: RawOperation;
  if (request.method === 'POST') {
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
    raw = body as RawOperation;
  } else if (request.method === 'GET') {
    // Apollo's CSRF prevention lets a GET run only with one of these headers (or a
    // non-simple content type, which is left to Apollo).
    if (!headers['apollo-require-preflight'] && !headers['x-apollo-operation-name']) return undefined;
    raw = rawFromQuery(request.query);
  } else {
    return undefined;
  }
  if (typeof raw.query !== 'string' || raw.extensions !== undefined) return undefined;
  return { method: request.method, raw, accept };
}

/** A GET's operation from its query string (its `extensions` and `variables` are JSON text). */
function rawFromQuery(query: unknown): RawOperation {
  const params = (query ?? {}) as Record<string, unknown>;
  const json = (value: unknown): unknown => {
    if (typeof value !== 'string') return undefined;
    try {
      return JSON.parse(value);
    } catch {
      return undefined; // Apollo answers the malformed parameter itself
    }
  };
  return { query: params.query, operationName: params.operationName, variables: json(params.variables), extensions: json(params.extensions) };
}

function apolloLogger(logger: Logger) {
  const child = logger.child({ component: 'apollo' });
  return {
    debug: (message: unknown) => child.debug(String(message)),
    info: (message: unknown) => child.info(String(message)),
    warn: (message: unknown) => child.warn(String(message)),
    error: (message: unknown) => child.error(String(message)),
  };
}

/** RFC 9110 If-None-Match: `*`, or a list of (weak or strong) entity tags compared weakly. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === opaque);
}
