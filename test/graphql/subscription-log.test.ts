import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger } from '../../src/telemetry/logger';

describe('subscription log line', () => {
  const lines: string[] = [];
  let gateway: Gateway;

  beforeAll(async () => {
    const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
    gateway = await startGateway(testConfig({ SIMULATOR_LATENCY_MS: '0', SIMULATOR_TOKEN_DELAY_MS: '1' }), logger);
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('writes one line per subscription with its outcome and chunk count, and never the prompt or answer', async () => {
    const prompt = 'secret-prompt-text-7f3a';
    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket });
    const deltas: string[] = [];
    try {
      await new Promise<void>((resolve, reject) =>
        client.subscribe<{ completionStream: { delta: string } }>(
          {
            query: 'subscription Watch($input: CompletionInput!) { completionStream(input: $input) { delta } }',
            variables: { input: { prompt, thinking: false } },
            operationName: 'Watch',
          },
          { next: (result) => deltas.push(result.data!.completionStream.delta), error: reject, complete: resolve },
        ),
      );
    } finally {
      await client.dispose();
    }
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const logged = entries.filter((entry) => entry.msg === 'graphql subscription');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ operationName: 'Watch', operationType: 'subscription', outcome: 'ok', chunks: deltas.length });
    const everything = lines.join('\n');
    expect(everything).not.toContain(prompt);
    const answer = deltas.join('');
    expect(answer.length).toBeGreaterThan(20);
    expect(everything).not.toContain(answer.slice(0, 20));
  });
});
