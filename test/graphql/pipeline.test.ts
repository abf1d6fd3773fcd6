import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger, silentLogger } from '../../src/telemetry/logger';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';

describe('one operation pipeline: the same telemetry over every transport', () => {
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

  it('logs a huge subscription id (the client picks it) cut to 128 characters and its length, and still answers it', async () => {
    const id = `id-${'x'.repeat(200_000)}`;
    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket, generateID: () => id });
    let chunks = 0;
    try {
      await new Promise<void>((resolve, reject) =>
        client.subscribe(
          { query: 'subscription LongId($input: CompletionInput!) { completionStream(input: $input) { delta } }', variables: { input: { prompt: 'long id', thinking: false } } },
          { next: () => void (chunks += 1), error: reject, complete: resolve },
        ),
      );
    } finally {
      await client.dispose();
    }
    expect(chunks).toBeGreaterThan(0);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.operationName === 'LongId');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.subscriptionId).toBe(`${id.slice(0, 128)}…(${id.length} chars)`);
    expect(lines.every((line) => line.length < 10_000)).toBe(true);
  });

  const entries = (): Array<Record<string, unknown>> => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  it('writes the same one line for a subscription over SSE, naming its transport', async () => {
    const before = entries().length;
    const response = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'subscription OverSse($input: CompletionInput!) { completionStream(input: $input) { delta } }',
        variables: { input: { prompt: 'sse telemetry', thinking: false } },
      }),
    });
    const events = await response.text();
    expect(events).toContain('event: complete');
    const logged = entries().slice(before).filter((entry) => entry.msg === 'graphql subscription');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ operationName: 'OverSse', operationType: 'subscription', transport: 'sse', outcome: 'ok' });
    expect(logged[0]!.chunks).toBe(events.split('event: next').length - 1);
  });

  it('logs a client that went away as client_closed at debug level, never as a masked internal error', async () => {
    const before = entries().length;
    gateway.simulator!.setOptions({ latencyMs: 400 });
    const controller = new AbortController();
    const request = fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Gone { completion(input: {prompt: "abandoned", thinking: false}) { id } }' }),
      signal: controller.signal,
    }).catch(() => undefined);
    // Abort once the upstream call is under way.
    while (gateway.simulator!.counters.inFlight === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await request;
    while (!entries().slice(before).some((entry) => entry.msg === 'graphql request')) await new Promise((resolve) => setTimeout(resolve, 5));
    gateway.simulator!.setOptions({ latencyMs: 0 });
    const fresh = entries().slice(before);
    expect(fresh.find((entry) => entry.msg === 'graphql request')).toMatchObject({
      operationName: 'Gone',
      outcome: 'client_closed',
      errorCodes: ['CLIENT_CLOSED_REQUEST'],
      level: 'debug',
    });
    expect(fresh.filter((entry) => entry.level === 'error')).toEqual([]);
  });

  it('logs a query over HTTP with the same fields, and a request Apollo refuses before running it too', async () => {
    const before = entries().length;
    const ok = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Mode { upstream { mode } }' }),
    });
    expect(ok.status).toBe(200);
    // A batch (JSON array) is refused by Apollo before any plugin runs.
    const batch = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ upstream { mode } }' }, { query: '{ upstream { mode } }' }]),
    });
    expect(batch.status).toBe(400);
    await batch.text();
    const logged = entries().slice(before).filter((entry) => entry.msg === 'graphql request');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ operationName: 'Mode', operationType: 'query', transport: 'http', status: 200, outcome: 'ok', upstreamCalls: 0 });
    expect(logged[1]).toMatchObject({ transport: 'http', status: 400, outcome: 'error', errorCodes: ['BAD_REQUEST'] });
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

  it('continues an incoming traceparent for a subscription over SSE', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const response = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', traceparent: `00-${traceId}-1122334455667788-01` },
      body: JSON.stringify({
        query: 'subscription TracedSse($input: CompletionInput!) { completionStream(input: $input) { delta } }',
        variables: { input: { prompt: 'trace this sse stream', thinking: false } },
      }),
    });
    await response.text();
    const operation = exporter.getFinishedSpans().find((span) => span.name === 'subscription TracedSse')!;
    expect(operation.spanContext().traceId).toBe(traceId);
    expect(operation.parentSpanContext?.spanId).toBe('1122334455667788');
    const sent = gateway.simulator!.requests.at(-1)!;
    expect(String(sent.headers.traceparent)).toContain(traceId);
  });
});
