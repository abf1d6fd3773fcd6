import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { sha256Hex } from '../../src/graphql/persisted-documents';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { WARMUP_HEADER, WARMUP_STAND_IN_HEADER } from '../../src/http/warmup';
import { createLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { gql } from '../helpers/gateway';
import { waitFor } from '../helpers/wait';
import { scrape, sumOf } from '../telemetry/prometheus';

/**
 * A fresh replica warms its hot paths up in-process before it says ready: synthetic
 * operations through the whole HTTP stack that reach nothing outside (no DeepSeek call, no
 * quota, no metric, no request log line, no span) and leave nothing behind in the cache.
 */
describe('warm-up before ready (WARMUP_OPERATIONS)', () => {
  let gateway: Gateway;
  let telemetry: Telemetry;
  const spans = new InMemorySpanExporter();
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', WARMUP_OPERATIONS: '90', LOG_LEVEL: 'info', AUTH_MODE: 'none' });
    telemetry = startTelemetry(config.telemetry, { spanExporter: spans });
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    gateway = await startGateway(config, logger, { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  it('ran every warm-up operation without a failure before saying it listens, and is ready', async () => {
    const warmed = lines.findIndex((line) => line.msg === 'gateway warmed up');
    const listening = lines.findIndex((line) => line.msg === 'gateway listening');
    expect(warmed).toBeGreaterThanOrEqual(0);
    expect(warmed).toBeLessThan(listening);
    // Every other operation is a cache miss, and three in seven of the rest are streams (SSE,
    // multipart and graphql-ws, one WebSocket), answered by the loopback stand-in.
    expect(lines[warmed]).toMatchObject({ operations: 90, misses: 45, streams: 18, webSocketStreams: 6, failed: 0 });
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('reached nothing outside and left no trace: no upstream call, request line, metric, span or cache entry', async () => {
    // The misses reached the stand-in, not the configured upstream (here the gateway's own simulator).
    expect(gateway.simulator!.counters.total).toBe(0);
    expect(gateway.services.completions.stats()).toMatchObject({ upstreamCalls: 0 });
    expect(lines.filter((line) => line.msg === 'graphql request' || line.msg === 'graphql subscription')).toEqual([]);
    const samples = await scrape(gateway.metricsUrl);
    expect(sumOf(samples, 'graphql_server_requests_total')).toBe(0);
    expect(sumOf(samples, 'http_server_request_duration_seconds_count')).toBe(0);
    expect(sumOf(samples, 'gateway_upstream_call_duration_seconds_count')).toBe(0);
    expect(sumOf(samples, 'http_client_request_duration_seconds_count')).toBe(0);
    expect(sumOf(samples, 'gen_ai_client_token_usage_count')).toBe(0);
    await telemetry.shutdown().catch(() => undefined);
    expect(spans.getFinishedSpans()).toEqual([]);
    expect(gateway.services.cache.stats()).toMatchObject({ entries: 0, misses: 0 });
    // A third of the warm-up's other operations were cache hits (its own entry), so the hit path was compiled.
    expect(gateway.services.cache.stats().hits).toBeGreaterThanOrEqual(14);
  });

  it('ignores the warm-up header once the warm-up is over: a client cannot borrow its caller or skip telemetry', async () => {
    const res = await gql(gateway, '{ __typename }', undefined, { headers: { [WARMUP_HEADER]: 'guess' } });
    expect(res.status).toBe(200);
    expect(lines.filter((line) => line.msg === 'graphql request')).toHaveLength(1);
  });

  it('sends no client to the stand-in once the warm-up is over: a completion reaches the configured upstream', async () => {
    const res = await gql(gateway, 'query { completion(input: { prompt: "after the warm-up", thinking: false }) { cached } }', undefined, {
      headers: { [WARMUP_HEADER]: 'guess', [WARMUP_STAND_IN_HEADER]: '1' },
    });
    expect(res.status).toBe(200);
    expect(gateway.simulator!.counters.total).toBe(1);
  });

  it('sends no stream to the stand-in once the warm-up is over: an SSE subscription is a client\'s, upstream and logged', async () => {
    const subscriptions = () => lines.filter((line) => line.msg === 'graphql subscription').length;
    const [loggedBefore, callsBefore] = [subscriptions(), gateway.simulator!.counters.total];
    const res = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', [WARMUP_HEADER]: 'guess', [WARMUP_STAND_IN_HEADER]: '1' },
      body: JSON.stringify({
        query: 'subscription ($input: CompletionInput!) { completionStream(input: $input) { finishReason } }',
        variables: { input: { prompt: 'a stream after the warm-up', thinking: false, maxTokens: 2 } },
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/"finishReason":"[A-Z_]+"/);
    expect(gateway.simulator!.counters.total).toBe(callsBefore + 1);
    await waitFor(() => subscriptions() === loggedBefore + 1);
  });

  it('sends no WebSocket subscription to the stand-in once the warm-up is over: it is a client\'s, upstream and logged', async () => {
    const subscriptions = () => lines.filter((line) => line.msg === 'graphql subscription').length;
    const [loggedBefore, callsBefore] = [subscriptions(), gateway.simulator!.counters.total];
    const headers = { [WARMUP_HEADER]: 'guess', [WARMUP_STAND_IN_HEADER]: '1' };
    class MarkedWebSocket extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    }
    const client = createClient({ url: gateway.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: MarkedWebSocket, retryAttempts: 0 });
    try {
      const finishReasons: unknown[] = [];
      for await (const result of client.iterate<{ completionStream: { finishReason: string | null } }>({
        query: 'subscription ($input: CompletionInput!) { completionStream(input: $input) { finishReason } }',
        variables: { input: { prompt: 'a WebSocket stream after the warm-up', thinking: false, maxTokens: 2 } },
      })) {
        expect(result.errors).toBeUndefined();
        finishReasons.push(result.data?.completionStream.finishReason);
      }
      expect(finishReasons.at(-1)).toMatch(/^[A-Z_]+$/);
    } finally {
      await client.dispose();
    }
    expect(gateway.simulator!.counters.total).toBe(callsBefore + 1);
    await waitFor(() => subscriptions() === loggedBefore + 1);
  });
});

describe('warm-up with a safelist (PERSISTED_DOCUMENTS_ONLY)', () => {
  it('runs its own documents, which no manifest lists, and still refuses them to clients', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'manifest-')), 'manifest.json');
    const listed = 'query Typename { __typename }';
    writeFileSync(path, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: sha256Hex(listed), name: 'Typename', type: 'query', body: listed }] }));
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', WARMUP_OPERATIONS: '40', LOG_LEVEL: 'info', AUTH_MODE: 'none', PERSISTED_DOCUMENTS_FILE: path, PERSISTED_DOCUMENTS_ONLY: 'true' });
    const logged: Array<Record<string, unknown>> = [];
    const gateway = await startGateway(config, createLogger('info', { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) }));
    try {
      expect(logged.find((line) => line.msg === 'gateway warmed up')).toMatchObject({ operations: 40, misses: 20, failed: 0 });
      // The hits went through the full path and found the warm-up's entry.
      expect(gateway.services.cache.stats().hits).toBeGreaterThan(0);
      const refused = await gql(gateway, 'query WarmUpMiss($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { id } }', { prompt: 'x' });
      expect(refused.status).toBe(403);
      expect(gateway.simulator!.counters.total).toBe(0);
    } finally {
      await gateway.close();
    }
  });
});
