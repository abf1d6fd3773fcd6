/**
 * The baselines of bench row (a): a bare Apollo Server 5 on the gateway's HTTP stack
 * (Fastify 5 + @as-integrations/fastify, same Fastify options, CSRF prevention on, no
 * plugins). It answers `{ __typename }`, and the gateway's cache-hit query shape,
 * `completion(input: { prompt, thinking }) { id content cached }`, from a `Map` through a
 * per-request DataLoader (what a hit costs with nothing but the stack). Run as its own
 * child process by bench/bench.ts.
 *
 * Env: HOST (default 127.0.0.1), PORT (default 0). Prints one JSON line
 * `{"msg":"bare server listening","url":".../graphql"}`.
 */
import { ApolloServer } from '@apollo/server';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import DataLoader from 'dataloader';
import Fastify from 'fastify';

async function main(): Promise<void> {
  // The gateway's Fastify options (src/http/server.ts).
  const app = Fastify({ bodyLimit: 8 * 1024 * 1024, logger: false, forceCloseConnections: 'idle', return503OnClosing: true });
  // The same answer the gateway holds for the bench prompt's shape.
  const store = new Map<string, { id: string; content: string; cached: boolean }>();
  const apollo = new ApolloServer<{ loader: DataLoader<string, { id: string; content: string; cached: boolean } | null> }>({
    typeDefs: `
      type Query { hello: String completion(input: CompletionInput!): Completion }
      input CompletionInput { prompt: String thinking: Boolean }
      type Completion { id: ID! content: String! cached: Boolean! }
    `,
    resolvers: {
      Query: {
        hello: () => 'world',
        completion: (_parent: unknown, args: { input: { prompt?: string; thinking?: boolean } }, context) =>
          context.loader.load(JSON.stringify([args.input.prompt ?? '', args.input.thinking ?? true])),
      },
    },
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    plugins: [],
  });
  await apollo.start();
  const answer = (key: string) => {
    let value = store.get(key);
    if (!value) {
      value = { id: `c_${key.length.toString(16).padStart(64, '0')}`, content: `The answer to ${key}, as the bench's cache holds it.`, cached: true };
      store.set(key, value);
    }
    return value;
  };
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    handler: fastifyApolloHandler(apollo, {
      context: async () => ({ loader: new DataLoader<string, { id: string; content: string; cached: boolean } | null>(async (keys) => keys.map(answer)) }),
    }),
  });
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
