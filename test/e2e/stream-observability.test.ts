import { once } from 'node:events';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { silentLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { payloads, readMultipart } from '../helpers/multipart';
import { waitFor } from '../helpers/wait';

/**
 * Every streaming transport continues the caller's trace (the `traceparent` header over
 * HTTP; over WebSocket, the subscribe message's extensions or the connection_init
 * payload), and the last payload of every stream carries `extensions.cost`, as a query's
 * response does. One telemetry per file: the API's globals are per process.
 */

const STREAM = `subscription Traced($input: CompletionInput!) { completionStream(input: $input) { completionId delta finishReason } }`;

interface Event {
  data?: { completionStream: { finishReason: string | null } };
  extensions?: { cost?: { upstreamCalls: number; cacheHits: number; estimatedCostUsd: number } };
}

let counter = 0;
/** A fresh W3C trace context per call. */
function traceparent(): { header: string; traceId: string; parentId: string } {
  counter += 1;
  const traceId = `${Date.now().toString(16).padStart(16, '0')}${counter.toString(16).padStart(16, '0')}`;
  const parentId = counter.toString(16).padStart(16, 'b');
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

describe('streams carry the trace and report their cost, on every transport', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let gateway: Gateway;
  const wsUrl = () => gateway.graphqlUrl.replace(/^http/, 'ws');

  beforeAll(async () => {
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', SIMULATOR_TOKEN_DELAY_MS: '0', WS_CONNECTION_INIT_TIMEOUT_MS: '200' });
    telemetry = startTelemetry(config.telemetry, { spanExporter: exporter });
    gateway = await startGateway(config, silentLogger(), { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  /** The operation span of `traceId`, once it has ended; its parent must be the caller's span. */
  async function expectOperationUnder(caller: { traceId: string; parentId: string }): Promise<void> {
    await waitFor(() => exporter.getFinishedSpans().some((span) => span.spanContext().traceId === caller.traceId && span.name === 'subscription Traced'));
    const operation = exporter.getFinishedSpans().find((span) => span.spanContext().traceId === caller.traceId && span.name === 'subscription Traced')!;
    expect(operation.parentSpanContext?.spanId).toBe(caller.parentId);
    // The upstream stream's spans are in the same trace, under the operation.
    expect(exporter.getFinishedSpans().some((span) => span.spanContext().traceId === caller.traceId && span.name.includes('/chat/completions'))).toBe(true);
  }

  async function overWebSocket(input: Record<string, unknown>, options: { connectionParams?: Record<string, unknown>; extensions?: Record<string, unknown> }): Promise<Event[]> {
    const client: Client = createWsClient({ url: wsUrl(), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: options.connectionParams });
    try {
      const events: Event[] = [];
      for await (const event of client.iterate({ query: STREAM, variables: { input }, extensions: options.extensions })) events.push(event as Event);
      return events;
    } finally {
      await client.dispose();
    }
  }

  it('graphql-ws: a traceparent in the subscribe message extensions', async () => {
    const caller = traceparent();
    const events = await overWebSocket({ prompt: 'trace over ws, extensions', thinking: false }, { extensions: { traceparent: caller.header } });
    expect(events.at(-1)!.data!.completionStream.finishReason).toBe('STOP');
    await expectOperationUnder(caller);
  });

  it('graphql-ws: a traceparent in the connection_init payload, and the last chunk carries extensions.cost', async () => {
    const caller = traceparent();
    const events = await overWebSocket({ prompt: 'trace over ws, connection', thinking: false }, { connectionParams: { traceparent: caller.header } });
    await expectOperationUnder(caller);
    expect(events.slice(0, -1).every((event) => event.extensions === undefined)).toBe(true);
    expect(events.at(-1)!.extensions!.cost).toMatchObject({ upstreamCalls: 1, cacheHits: 0 });
    expect(events.at(-1)!.extensions!.cost!.estimatedCostUsd).toBeGreaterThan(0);
  });

  it('graphql-ws: a malformed or oversized traceparent starts a trace of its own', async () => {
    const events = await overWebSocket({ prompt: 'trace over ws, garbage', thinking: false }, { extensions: { traceparent: `00-${'z'.repeat(600)}` } });
    expect(events.at(-1)!.data!.completionStream.finishReason).toBe('STOP');
  });

  it('GraphQL over SSE: the traceparent header', async () => {
    const caller = traceparent();
    const client = createSseClient({ url: gateway.graphqlUrl, retryAttempts: 0, headers: { traceparent: caller.header } });
    try {
      const events: Event[] = [];
      for await (const event of client.iterate({ query: STREAM, variables: { input: { prompt: 'trace over sse', thinking: false } } })) events.push(event as Event);
      expect(events.at(-1)!.extensions!.cost).toMatchObject({ upstreamCalls: 1 });
    } finally {
      client.dispose();
    }
    await expectOperationUnder(caller);
  });

  it('multipart: the traceparent header', async () => {
    const caller = traceparent();
    const response = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'multipart/mixed;subscriptionSpec="1.0", application/json', traceparent: caller.header },
      body: JSON.stringify({ query: STREAM, variables: { input: { prompt: 'trace over multipart', thinking: false } } }),
    });
    const reader = readMultipart(response.body!);
    await reader.done;
    expect((payloads(reader).at(-1)!.payload as Event).extensions!.cost).toMatchObject({ upstreamCalls: 1 });
    await expectOperationUnder(caller);
  });

  it('closes a WebSocket that never sends connection_init after WS_CONNECTION_INIT_TIMEOUT_MS (4408)', async () => {
    const socket = new WebSocket(wsUrl(), 'graphql-transport-ws');
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(4408);
  });
});
