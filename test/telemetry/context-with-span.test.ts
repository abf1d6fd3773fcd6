import { ROOT_CONTEXT, TraceFlags, trace, type SpanContext } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { contextWithSpan, noopInstruments } from '../../src/telemetry/instruments';

const CALLER: SpanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true };

describe('contextWithSpan', () => {
  const noop = noopInstruments().tracer;

  it("keeps the parent when the span records nothing and carries the parent's span context (the no-op tracer)", () => {
    const parent = trace.setSpanContext(ROOT_CONTEXT, CALLER);
    const span = noop.startSpan('call', {}, parent);
    const context = contextWithSpan(parent, span);
    expect(context).toBe(parent);
    // What propagation reads from it is the caller's span context, unchanged.
    expect(trace.getSpanContext(context)).toEqual(CALLER);
  });

  it('keeps a parent without a span when the span has no valid context either', () => {
    const span = noop.startSpan('call', {}, ROOT_CONTEXT);
    expect(contextWithSpan(ROOT_CONTEXT, span)).toBe(ROOT_CONTEXT);
    expect(trace.getSpan(contextWithSpan(ROOT_CONTEXT, span))).toBeUndefined();
  });

  it('sets a span that records', () => {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
    const parent = trace.setSpanContext(ROOT_CONTEXT, CALLER);
    const span = provider.getTracer('t').startSpan('call', {}, parent);
    const context = contextWithSpan(parent, span);
    expect(context).not.toBe(parent);
    expect(trace.getSpan(context)).toBe(span);
    expect(trace.getSpanContext(context)?.traceId).toBe(CALLER.traceId);
    expect(trace.getSpanContext(context)?.spanId).not.toBe(CALLER.spanId);
  });

  it('sets a span that records nothing but has span ids of its own (a sampler dropped it)', () => {
    const parent = trace.setSpanContext(ROOT_CONTEXT, CALLER);
    const dropped = trace.wrapSpanContext({ ...CALLER, spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.NONE, isRemote: false });
    expect(dropped.isRecording()).toBe(false);
    const context = contextWithSpan(parent, dropped);
    expect(trace.getSpan(context)).toBe(dropped);
    expect(trace.getSpanContext(context)?.spanId).toBe('00f067aa0ba902b7');
  });
});
