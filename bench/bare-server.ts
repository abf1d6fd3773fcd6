/**
 * The baseline of bench row (a): a bare Apollo Server 5 on the gateway's HTTP stack
 * (Fastify 5 + @as-integrations/fastify, same Fastify options, CSRF prevention on, no
 * plugins), answering `{ __typename }`. Run as its own child process by bench/bench.ts.
 *
 * Env: HOST (default 127.0.0.1), PORT (default 0). Prints one JSON line
 * `{"msg":"bare server listening","url":".../graphql"}`.
 */
import { ApolloServer } from '@apollo/server';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import Fastify from 'fastify';

async function main(): Promise<void> {
  // The gateway's Fastify options (src/http/server.ts).
  const app = Fastify({ bodyLimit: 8 * 1024 * 1024, logger: false, forceCloseConnections: 'idle', return503OnClosing: true });
  const apollo = new ApolloServer({
    typeDefs: 'type Query { hello: String }',
    resolvers: { Query: { hello: () => 'world' } },
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    plugins: [],
  });
  await apollo.start();
  app.route({ url: '/graphql', method: ['GET', 'POST', 'OPTIONS'], handler: fastifyApolloHandler(apollo) });
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'bare server listening', url: `http://127.0.0.1:${port}/graphql` })}\n`);

  const stop = (): void => {
    void apollo
      .stop()
      .then(() => app.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bare server failed to start: ${String(error)}\n`);
  process.exit(1);
});
