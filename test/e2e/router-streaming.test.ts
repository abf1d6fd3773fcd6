import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { composeServices } from '@apollo/composition';
import { createGatewayRuntime, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import httpTransport from '@graphql-mesh/transport-http';
import { parse } from 'graphql';
import { createClient, type Client } from 'graphql-sse';
import type { Gateway } from '../../src/app';
import { loadTypeDefs } from '../../src/graphql/schema';
import { chatCalls, startTestGateway } from '../helpers/gateway';

/**
 * A real federation router (Hive Gateway's runtime, from npm) in front of this subgraph:
 * a client subscribes at the router, which subscribes at the subgraph over its HTTP
 * transport (GraphQL over SSE on /graphql) and streams the chunks back.
 */

const STREAM = `subscription ($input: CompletionInput!) {
  completionStream(input: $input) { completionId delta finishReason completion { id content } }
}`;

interface Chunk {
  completionId: string;
  delta: string;
  finishReason: string | null;
  completion: { id: string; content: string } | null;
}

describe('streaming through a federation router (Hive Gateway runtime)', () => {
  let gateway: Gateway;
  const routers: Array<{ runtime: GatewayRuntime; server: Server }> = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '1' });
  });
  afterAll(async () => {
    for (const client of clients) client.dispose();
    for (const { runtime, server } of routers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await runtime.dispose();
    }
    await gateway.close();
  });

  /** A router over the supergraph of this one subgraph; `method` is its subgraph transport's, when set. */
  async function startRouter(options: { method?: 'POST' } = {}): Promise<string> {
    const composed = composeServices([{ name: 'deepseek', typeDefs: parse(loadTypeDefs()), url: gateway.graphqlUrl }]);
    expect(composed.errors ?? []).toEqual([]);
    const runtime = createGatewayRuntime({
      supergraph: composed.supergraphSdl!,
      transports: { http: httpTransport },
      transportEntries: options.method ? { '*.http': { options: { method: options.method } } } : undefined,
      logging: false,
    });
    const server = createServer(runtime);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    routers.push({ runtime, server });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  }

  async function subscribeThrough(url: string, input: Record<string, unknown>): Promise<{ chunks: Chunk[]; errors: unknown[] }> {
    const client = createClient({ url, retryAttempts: 0 });
    clients.push(client);
    const chunks: Chunk[] = [];
    const errors: unknown[] = [];
    for await (const result of client.iterate<{ completionStream: Chunk }>({ query: STREAM, variables: { input } })) {
      if (result.errors) errors.push(...result.errors);
      if (result.data?.completionStream) chunks.push(result.data.completionStream);
    }
    return { chunks, errors };
  }

  it('streams a completion from the subgraph to the client, the router subscribing over SSE with a JSON POST', async () => {
    const url = await startRouter({ method: 'POST' });
    const before = chatCalls(gateway);
    const { chunks, errors } = await subscribeThrough(url, { prompt: 'stream me through a router', thinking: false });
    expect(errors).toEqual([]);
    expect(chunks.length).toBeGreaterThan(3);
    const last = chunks.at(-1)!;
    expect(last.finishReason).toBe('STOP');
    expect(last.completion).toEqual({ id: last.completionId, content: chunks.map((chunk) => chunk.delta).join('') });
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('with the router’s default (a GET without a preflight header) the subgraph refuses as a potential CSRF, and nothing is spent', async () => {
    const url = await startRouter();
    const before = gateway.simulator!.counters.total;
    const { chunks, errors } = await subscribeThrough(url, { prompt: 'a GET subscription through a router', thinking: false });
    expect(chunks).toEqual([]);
    expect(JSON.stringify(errors)).toMatch(/Cross-Site Request Forgery/);
    expect(gateway.simulator!.counters.total).toBe(before);
  });
});
