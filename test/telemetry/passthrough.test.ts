import { trace } from '@opentelemetry/api';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { gql, startTestGateway } from '../helpers/gateway';
import { scrape, sumOf } from './prometheus';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN}-01`;

describe('without a telemetry SDK (tests, tools)', () => {
  it('answers /metrics with 404 and sends no traceparent upstream', async () => {
    const gateway = await startTestGateway();
    try {
      const metrics = await fetch(`${gateway.metricsUrl}/metrics`);
      expect(metrics.status).toBe(404);
      expect(await metrics.text()).toMatch(/metrics are off/);
      await gql(gateway, '{ completion(input: {prompt: "no sdk", thinking: false}) { id } }', undefined, { headers: { traceparent: TRACEPARENT } });
      expect(gateway.simulator!.requests.at(-1)!.headers.traceparent).toBeUndefined();
    } finally {
      await gateway.close();
    }
  });
});

describe('the default telemetry (no trace exporter configured)', () => {
  let gateway: Gateway;
  let telemetry: Telemetry;
  const lines: string[] = [];

  beforeAll(async () => {
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', LOG_LEVEL: 'info' });
    telemetry = startTelemetry(config.telemetry);
    gateway = await startGateway(config, createLogger('info', { write: (line: string) => void lines.push(line) }), { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  it('records no span, yet passes the caller trace on to DeepSeek and into the request log', async () => {
    expect(telemetry.tracing).toBe(false);
    expect(trace.getTracer('t').startSpan('x').isRecording()).toBe(false);
    const res = await gql(gateway, 'query Passed { completion(input: {prompt: "pass me on", thinking: false}) { id } }', undefined, {
      headers: { traceparent: TRACEPARENT },
    });
    expect(res.errors).toBeUndefined();
    // Nothing recorded in between: the caller's own span context goes on unchanged.
    expect(gateway.simulator!.requests.at(-1)!.headers.traceparent).toBe(TRACEPARENT);
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((entry) => entry.operationName === 'Passed');
    expect(line).toMatchObject({ msg: 'graphql request', traceId: TRACE_ID });
  });

  it('serves metrics at /metrics', async () => {
    await gql(gateway, 'query Counted { upstream { circuit } }');
    const samples = await scrape(gateway.metricsUrl);
    expect(sumOf(samples, 'graphql_server_requests_total', { graphql_operation_name: 'Counted', outcome: 'ok' })).toBe(1);
    expect(sumOf(samples, 'gateway_upstream_circuit_state')).toBe(0);
  });
});
