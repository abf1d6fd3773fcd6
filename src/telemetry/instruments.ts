import { ProxyTracerProvider, createNoopMeter, isSpanContextValid, trace, type Context, type Meter, type Span, type Tracer } from '@opentelemetry/api';

/** Tracer and meter name of the gateway's instrumentation (the one instrumentation scope). */
export const INSTRUMENTATION_SCOPE = 'deepseek-gateway';

/**
 * The tracer and meter every layer records with. Built once by the composition root from
 * the started SDK (`Telemetry.instruments`, src/telemetry/sdk.ts) and handed to each layer's
 * constructor, so no layer reaches for the global providers and a test can give a component
 * its own in-memory provider.
 */
export interface Instruments {
  readonly tracer: Tracer;
  readonly meter: Meter;
}

/**
 * Records nothing. Its tracer still hands on a caller's span context (a non-recording span
 * with the parent's ids), so a `traceparent` passes through to DeepSeek without an SDK.
 */
export function noopInstruments(): Instruments {
  return {
    // A proxy provider without a delegate answers with the API's no-op tracer.
    tracer: new ProxyTracerProvider().getTracer(INSTRUMENTATION_SCOPE),
    meter: createNoopMeter(),
  };
}

/**
 * `parent` with `span` as its active span: `trace.setSpan`, except when that would change
 * nothing anyone can observe. A span that records nothing and carries its parent's span
 * context (what the no-op tracer hands out, without an SDK or with traces off: the default)
 * leaves the parent as it is; so does one with no valid context under a parent with none.
 * A context is a copied map with three closures; an upstream call would otherwise build
 * three of them that only repeat their parent.
 */
export function contextWithSpan(parent: Context, span: Span): Context {
  if (!span.isRecording()) {
    const own = span.spanContext();
    const parents = trace.getSpanContext(parent);
    if (own === parents || (!isSpanContextValid(own) && (parents === undefined || !isSpanContextValid(parents)))) return parent;
  }
  return trace.setSpan(parent, span);
}
