import { createNoopMeter, propagation, trace, type Context, type TextMapPropagator } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { noopInstruments } from '../../src/telemetry/instruments';
import { GOOD_KEY, chatRequest, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { testMeter } from './metrics-reader';

/** A minimal W3C `traceparent` propagator, enough to see what the transport injects. */
const traceparentPropagator: TextMapPropagator = {
  inject(context: Context, carrier: unknown, setter) {
    const span = trace.getSpanContext(context);
    if (span) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-01`);
  },
  extract: (context) => context,
  fields: () => ['traceparent'],
};

describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  let h: Harness;

  const instruments = {
    tracer: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test'),
    meter: createNoopMeter(),
  };

  beforeAll(() => {
    propagation.setGlobalPropagator(traceparentPropagator);
  });
  afterAll(() => {
    propagation.disable();
  });
  afterEach(async () => {
    exporter.reset();
    await h.close();
  });

  it('records a call span with one child span per attempt and injects traceparent', async () => {
    h = await startHarness({ instruments });
    h.sim.faults.inject({ kind: 'status', status: 503 });

    await h.client.chat(chatRequest());

    const spans = exporter.getFinishedSpans();
    const call = spans.find((s) => s.name === 'upstream POST /chat/completions');
    const attempts = spans.filter((s) => s.name === 'POST /chat/completions');
    expect(call).toBeDefined();
    expect(call?.attributes['upstream.attempts']).toBe(2);
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200]);
    expect(attempts.map((s) => s.attributes['upstream.attempt'])).toEqual([1, 2]);
    for (const span of attempts) {
      expect(span.parentSpanContext?.spanId).toBe(call?.spanContext().spanId);
      expect(span.attributes).toMatchObject({
        'http.request.method': 'POST',
        'url.full': `${h.sim.url}/chat/completions`,
      });
      expect(span.attributes['upstream.trace_id']).toMatch(/^[0-9a-f]{32}$/);
    }
    const sent = h.sim.requests.map((r) => r.headers.traceparent);
    expect(sent).toEqual(attempts.map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`));
    expect(JSON.stringify(spans.map((s) => [s.name, s.attributes]))).not.toContain(GOOD_KEY);
  });
});

describe('call duration', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('covers the whole call, a stream body included: call duration ≥ the attempt durations', async () => {
    const metrics = testMeter();
    const tokenDelayMs = 20;
    h = await startHarness({ sim: { tokenDelayMs }, instruments: { tracer: noopInstruments().tracer, meter: metrics.meter } });

    let deltas = 0;
    for await (const event of h.client.chatStream(chatRequest())) if (event.type === 'delta') deltas += 1;
    // Both figures are recorded when the body closes, a tick after the last event.
    await waitFor(() => h.client.status().inFlight === 0);

    const call = await metrics.histogram('gateway.upstream.call.duration');
    const attempt = await metrics.histogram('http.client.request.duration');
    expect([call.count, attempt.count]).toEqual([1, 1]);
    // The simulator waits tokenDelayMs before every chunk after the first: a lower bound only.
    expect(attempt.sum).toBeGreaterThanOrEqual(((deltas - 1) * tokenDelayMs) / 1000);
    expect(call.sum).toBeGreaterThanOrEqual(attempt.sum);
    await metrics.shutdown();
  });
});
