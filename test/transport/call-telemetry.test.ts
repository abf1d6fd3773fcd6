import { ROOT_CONTEXT, SpanStatusCode, createNoopMeter, propagation, trace } from '@opentelemetry/api';
import { noopInstruments } from '../../src/telemetry/instruments';
import { callTelemetry } from '../../src/transport/call-telemetry';
import { TransportError } from '../../src/transport/errors';
import type { Dispatch, UpstreamRequest } from '../../src/transport/types';
import { GOOD_KEY, chatRequest, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { fakeNext, okResponse, openBody, rejectionOf, settle, statusError, streamHandler, textHandler, upstreamRequest } from './fakes';
import { recordingMetrics, spanRecorder, testMeter, traceparentPropagator } from './telemetry-helpers';

describe('call telemetry (fake next, injected clock)', () => {
  const { tracer, exporter } = spanRecorder();
  afterEach(() => exporter.reset());

  function instrumented(next: Dispatch) {
    let clock = 0;
    const metrics = recordingMetrics();
    const dispatch = callTelemetry({
      tracer,
      metrics,
      displayUrl: 'http://upstream.test/v1',
      errorType: (error) => (error instanceof TransportError ? `named ${error.kind}` : 'ABORTED'),
      now: () => clock,
    })(next);
    return { dispatch, metrics, tick: (ms: number) => (clock += ms) };
  }

  it("ends the call span and its duration when a stream's body closes, not when its headers are in", async () => {
    const body = openBody();
    const { dispatch, metrics, tick } = instrumented(fakeNext(okResponse(body)).dispatch);
    tick(0);
    const response = await dispatch(upstreamRequest({ stream: true, spanAttributes: { 'gen_ai.request.stream': true } }), streamHandler());
    tick(500);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(metrics.calls).toHaveLength(0);

    body.push('data: [DONE]\n\n');
    body.push(null);
    for await (const chunk of response.body) expect(String(chunk)).toContain('[DONE]');
    await settle();

    expect(metrics.calls).toEqual([{ method: 'POST', path: '/chat/completions', outcome: 'ok', seconds: 0.5 }]);
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('upstream POST /chat/completions');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': 'http://upstream.test/v1/chat/completions',
      'gen_ai.request.stream': true,
      'upstream.attempts': 1,
    });
  });

  it('records what ended a stream early as its outcome', async () => {
    const body = openBody();
    const { dispatch, metrics } = instrumented(fakeNext(okResponse(body)).dispatch);
    await dispatch(upstreamRequest({ stream: true }), streamHandler());

    body.destroy(new TransportError({ kind: 'timeout', phase: 'stream', timeoutMs: 400 }));
    await settle();

    expect(metrics.calls.map((c) => c.outcome)).toEqual(['named timeout']);
    expect(exporter.getFinishedSpans()[0].status).toEqual({ code: SpanStatusCode.ERROR, message: 'named timeout' });
  });

  it('ends a JSON call before it resolves, with the attributes its handler describes from the value', async () => {
    const { dispatch, metrics, tick } = instrumented(async (request, handler) => {
      tick(30);
      return fakeNext(okResponse()).dispatch(request, handler);
    });

    const value = await dispatch(upstreamRequest(), { ...textHandler(), describe: (text) => ({ 'answer.length': text.length }) });

    expect(value).toBe('{"ok":true}');
    expect(metrics.calls).toEqual([{ method: 'POST', path: '/chat/completions', outcome: 'ok', seconds: 0.03 }]);
    expect(exporter.getFinishedSpans()[0].attributes).toMatchObject({ 'answer.length': 11, 'upstream.attempts': 1 });
  });

  it('counts the exchanges of the call and puts the count on the failure it ends with', async () => {
    const { dispatch, metrics } = instrumented(async (_request, handler) => {
      handler.onExchange?.();
      handler.onExchange?.();
      throw statusError(503, { traceId: 'trace-1' });
    });

    const error = await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(error).toMatchObject({ kind: 'status', attempts: 2 });
    expect(metrics.calls.map((c) => c.outcome)).toEqual(['named status']);
    expect(exporter.getFinishedSpans()[0].attributes).toMatchObject({
      'error.type': 'named status',
      'http.response.status_code': 503,
      'upstream.trace_id': 'trace-1',
      'upstream.attempts': 2,
    });
  });

  it("names a caller's abort ABORTED and passes the reason on unchanged", async () => {
    const reason = new Error('caller left');
    const { dispatch, metrics } = instrumented(async () => {
      throw reason;
    });

    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toBe(reason);
    expect(metrics.calls.map((c) => c.outcome)).toEqual(['ABORTED']);
  });

  it("parents the call span on the request's trace context and hands inner policies the call span's", async () => {
    const parent = tracer.startSpan('operation');
    const next = fakeNext(okResponse());
    const { dispatch } = instrumented(next.dispatch);
    const request: UpstreamRequest = upstreamRequest({ traceContext: trace.setSpan(ROOT_CONTEXT, parent) });

    await dispatch(request, textHandler());
    parent.end();

    const call = exporter.getFinishedSpans().find((s) => s.name === 'upstream POST /chat/completions');
    expect(call?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(trace.getSpanContext(next.requests[0].traceContext!)?.spanId).toBe(call?.spanContext().spanId);
    expect(request.traceContext).not.toBe(next.requests[0].traceContext);
  });
});

describe('call and attempt spans against the simulator', () => {
  const { tracer, exporter } = spanRecorder();
  let h: Harness;

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
    h = await startHarness({ instruments: { tracer, meter: createNoopMeter() } });
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

  it('covers the whole call, a stream body included: call duration ≥ the attempt durations', async () => {
    const metrics = testMeter();
    const tokenDelayMs = 20;
    h = await startHarness({ sim: { tokenDelayMs }, instruments: { tracer: noopInstruments().tracer, meter: metrics.meter } });

    let deltas = 0;
    for await (const event of h.client.chatStream(chatRequest())) if (event.type === 'delta') deltas += 1;
    // Both figures are recorded when the body closes, a tick after the last event.
    await waitFor(() => h.client.status().inFlight === 0);

    const call = await metrics.histogram('gateway.upstream.call.duration', { outcome: 'ok' });
    const attempt = await metrics.histogram('http.client.request.duration', { 'http.response.status_code': 200 });
    expect([call.count, attempt.count]).toEqual([1, 1]);
    // The simulator waits tokenDelayMs before every chunk after the first: a lower bound only.
    expect(attempt.sum).toBeGreaterThanOrEqual(((deltas - 1) * tokenDelayMs) / 1000);
    expect(call.sum).toBeGreaterThanOrEqual(attempt.sum);
    // A stream read to its end is a success for the attempt too (no error.type).
    expect((await metrics.histogram('http.client.request.duration')).count).toBe(1);
    await metrics.shutdown();
  });
});
