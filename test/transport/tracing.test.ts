import { createNoopMeter, propagation, trace, type Context, type TextMapPropagator } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GOOD_KEY, chatRequest, startHarness, type Harness } from '../deepseek/harness';

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
