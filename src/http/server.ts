import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ErrorCode } from '../errors';
import { RequestLedger } from '../telemetry/ledger';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { registerHttpServerMetrics, registerMetricsRoute } from './metrics-route';
import type { GatewayServices, GraphQLContext } from '../graphql/context';
import { createFormatError } from '../graphql/format-error';
import { CompletionBudget, queryLimitRules } from '../graphql/limits';
import { registerHealthRoutes, type Readiness } from './health';
import { costExtensionPlugin } from '../graphql/plugins/cost-extension';
import { operationSpanPlugin } from '../graphql/plugins/operation-span';
import { requestLogPlugin } from '../graphql/plugins/request-log';
import { buildSchema } from '../graphql/schema';
import { registerSseRoute } from './sse';
import { createSubscriptionServer } from './websocket';

export const GRAPHQL_PATH = '/graphql';

/** Largest request body accepted: a 1M-token context is about 3.5 MB of text. */
const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export interface HttpServer {
  app: FastifyInstance;
  apollo: ApolloServer<GraphQLContext>;
  /** Stops accepting requests, lets in-flight ones finish, then stops Apollo. */
  stop(): Promise<void>;
}

/**
 * Apollo Server 5 on Fastify 5, and graphql-ws subscriptions on the same `http.Server` and path.
 * Fastify was chosen by measurement: see docs/architecture.md.
 */
export async function createHttpServer(options: {
  services: GatewayServices;
  logger: Logger;
  readiness: () => Readiness;
  instruments: Instruments;
  /** Prometheus text for GET /metrics (from `startTelemetry`); without it /metrics answers 404. */
  scrapeMetrics?: () => Promise<string>;
}): Promise<HttpServer> {
  const { services, logger } = options;
  const production = services.config.nodeEnv === 'production';
  const app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, logger: false, forceCloseConnections: 'idle', return503OnClosing: true });
  registerHttpServerMetrics(app, options.instruments.meter);
  const schema = buildSchema();
  const formatError = createFormatError(logger);
  // WebSocket upgrades on /graphql (graphql-ws); drained with Apollo through its plugin.
  const subscriptions = createSubscriptionServer({
    server: app.server,
    path: GRAPHQL_PATH,
    schema,
    services,
    logger,
    formatError,
    maxPayloadBytes: BODY_LIMIT_BYTES,
    instruments: options.instruments,
  });
  // The same subscriptions over Server-Sent Events, for clients without WebSocket.
  const sse = registerSseRoute(app, { schema, services, logger, formatError, instruments: options.instruments });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    logger: apolloLogger(logger),
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: !production,
    csrfPrevention: true,
    validationRules: queryLimitRules(services.config.graphql),
    // main.ts owns signals: Apollo's own handlers would re-raise SIGTERM after stopping
    // and the process would exit 143 instead of 0.
    stopOnTerminationSignals: false,
    plugins: [
      fastifyApolloDrainPlugin(app),
      subscriptions.drainPlugin,
      sse,
      production
        ? ApolloServerPluginLandingPageProductionDefault({ footer: false })
        : ApolloServerPluginLandingPageLocalDefault({ embed: true, footer: false }),
      operationSpanPlugin(options.instruments.tracer),
      costExtensionPlugin(),
      requestLogPlugin(options.instruments.meter),
    ],
  });
  await apollo.start();

  app.setErrorHandler(graphqlErrorHandler(logger));
  app.route({
    url: GRAPHQL_PATH,
    method: ['GET', 'POST', 'OPTIONS'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request, reply) => {
        // Aborted when the client goes away before its answer is written, so an upstream
        // call nobody waits for any more can be released.
        const controller = new AbortController();
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
        });
        const ledger = new RequestLedger(services.config.deepseek.prices);
        return {
          services,
          loaders: services.completions.createLoaders({ signal: controller.signal, ledger }),
          logger: logger.child({ reqId: request.id }),
          signal: controller.signal,
          budget: new CompletionBudget(services.config.graphql.maxCompletionsPerOperation),
          ledger,
        };
      },
    }),
  });
  app.get('/', async (_request, reply) => reply.redirect(GRAPHQL_PATH, 302));
  registerHealthRoutes(app, options.readiness);
  registerMetricsRoute(app, options.scrapeMetrics);

  return {
    app,
    apollo,
    // apollo.stop() runs the drain plugin, which closes Fastify and waits for requests.
    stop: () => apollo.stop(),
  };
}

/**
 * Fastify answers body errors (malformed JSON, too large, bad content type) before Apollo
 * sees the request; answer them as GraphQL errors in JSON, never HTML or a stack trace.
 */
function graphqlErrorHandler(logger: Logger) {
  return (error: FastifyError, _request: unknown, reply: import('fastify').FastifyReply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) logger.error({ err: error }, 'unhandled HTTP error');
    const message = status === 500 ? 'Internal server error' : clientMessage(error);
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send({
        errors: [{ message, extensions: { code: status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : ErrorCode.BAD_REQUEST } }],
      });
  };
}

function clientMessage(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The request body is not valid JSON.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `The request body is larger than ${BODY_LIMIT_BYTES} bytes.`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported content type: send application/json.';
    default:
      return error.message;
  }
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
