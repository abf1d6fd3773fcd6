import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger, silentLogger } from '../../src/telemetry/logger';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';

describe('subscription telemetry', () => {
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

describe('subscription spans', () => {
  const exporter = new InMemorySpanExporter();
  let gateway: Gateway;
  let telemetry: Telemetry;

  beforeAll(async () => {
    // Wired as at start-up (W3C propagator included: without it no traceparent is written), spans kept in memory.
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', SIMULATOR_TOKEN_DELAY_MS: '1' });
    telemetry = startTelemetry(config.telemetry, { spanExporter: exporter });
    gateway = await startGateway(config, silentLogger(), { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  it('an operation span parents the upstream stream the subscription starts, and the call to DeepSeek', async () => {
    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket });
    try {
      await new Promise<void>((resolve, reject) =>
        client.subscribe(
          {
            query: 'subscription Traced($input: CompletionInput!) { completionStream(input: $input) { delta } }',
            variables: { input: { prompt: 'trace this stream', thinking: false } },
            operationName: 'Traced',
          },
          { next: () => undefined, error: reject, complete: resolve },
        ),
      );
    } finally {
      await client.dispose();
    }
    const spans = exporter.getFinishedSpans();
    const operation = spans.find((span) => span.name === 'subscription Traced')!;
    expect(operation.attributes).toMatchObject({ 'graphql.operation.type': 'subscription', 'graphql.operation.name': 'Traced' });
    const hub = spans.find((span) => span.name === 'stream hub upstream')!;
    expect(hub.parentSpanContext?.spanId).toBe(operation.spanContext().spanId);
    const call = spans.find((span) => span.name === 'upstream POST /chat/completions')!;
    expect(call.spanContext().traceId).toBe(operation.spanContext().traceId);
    const sent = gateway.simulator!.requests.at(-1)!;
    expect(String(sent.headers.traceparent)).toContain(operation.spanContext().traceId);
  });
});
