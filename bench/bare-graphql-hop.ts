/**
 * The second baseline of bench row k (a cache miss): the given stack with nothing of the
 * gateway's own. Fastify 5 (the gateway's options) takes `POST /graphql`; graphql-js parses
 * and validates each distinct document once, then executes it with the request's variables;
 * the `completion` resolver loads through a per-request DataLoader, whose batch function
 * sends DeepSeek's wire body (the one the gateway sends for a non-thinking completion) to
 * `POST /chat/completions` through an undici `Pool` and reads the JSON answer. No caller,
 * quota, cache, coalescing, policy, telemetry or log line: what any GraphQL front to the
 * upstream built on these libraries costs, so row k can say how much of a miss's cost is
 * the stack and how much the gateway. Run as its own child process by bench/bench.ts.
 *
 * Env: HOST (default 127.0.0.1), PORT (default 0), UPSTREAM_URL (the simulator),
 * UPSTREAM_KEY (its bearer key), UPSTREAM_CONNECTIONS (the pool's size, default 256).
 * Prints one JSON line `{"msg":"bare graphql hop listening","url":".../graphql"}`.
 */
import DataLoader from 'dataloader';
import Fastify from 'fastify';
import { buildSchema, execute, parse, validate, type DocumentNode, type ExecutionResult } from 'graphql';
import { Pool } from 'undici';

interface Completion {
  id: string;
  content: string;
  cached: boolean;
}

interface WireAnswer {
  id?: string;
  choices?: Array<{ message?: { content?: string } }>;
}

/** Documents kept parsed and validated (the bench sends one). */
const MAX_DOCUMENTS = 100;

async function main(): Promise<void> {
  const upstream = new Pool(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:1', { connections: Number(process.env.UPSTREAM_CONNECTIONS ?? 256) });
  const authorization = `Bearer ${process.env.UPSTREAM_KEY ?? ''}`;
  const schema = buildSchema(`
    type Query { completion(input: CompletionInput!): Completion! }
    input CompletionInput { prompt: String! thinking: Boolean }
    type Completion { id: ID! content: String! cached: Boolean! }
  `);
  const documents = new Map<string, DocumentNode>();
  const call = async (prompt: string): Promise<Completion> => {
    const response = await upstream.request({
      method: 'POST',
      path: '/chat/completions',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ model: 'deepseek-flash', messages: [{ role: 'user', content: prompt }], thinking: { type: 'disabled' }, stream: false }),
    });
    const answer = (await response.body.json()) as WireAnswer;
    if (response.statusCode !== 200) throw new Error(`upstream answered ${response.statusCode}`);
    return { id: answer.id ?? '', content: answer.choices?.[0]?.message?.content ?? '', cached: false };
  };
  const rootValue = {
    completion: (args: { input: { prompt: string } }, context: { loader: DataLoader<string, Completion> }) => context.loader.load(args.input.prompt),
  };
  const run = (body: { query?: unknown; variables?: unknown }): ExecutionResult | Promise<ExecutionResult> => {
    if (typeof body.query !== 'string') return { errors: [{ message: 'no query' }] } as unknown as ExecutionResult;
    let document = documents.get(body.query);
    if (!document) {
      document = parse(body.query);
      const errors = validate(schema, document);
      if (errors.length > 0) return { errors };
      if (documents.size < MAX_DOCUMENTS) documents.set(body.query, document);
    }
    const loader = new DataLoader<string, Completion>((prompts) => Promise.all(prompts.map((prompt) => call(prompt).catch((error: unknown) => error as Error))));
    return execute({ schema, document, rootValue, contextValue: { loader }, variableValues: body.variables as Record<string, unknown> | undefined });
  };

  // The gateway's Fastify options (src/http/server.ts).
  const app = Fastify({ bodyLimit: 8 * 1024 * 1024, logger: false, forceCloseConnections: 'idle', return503OnClosing: true, keepAliveTimeout: 72_000 });
  app.post('/graphql', (request) => Promise.resolve(run(request.body as { query?: unknown; variables?: unknown })));
  await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: 'bare graphql hop listening', url: `http://127.0.0.1:${port}/graphql` })}\n`);
  const stop = (): void => {
    void app
      .close()
      .then(() => upstream.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bare graphql hop failed to start: ${String(error)}\n`);
  process.exit(1);
});
