import { SpanKind, propagation } from '@opentelemetry/api';
import { attemptTelemetry } from '../../src/transport/attempt-telemetry';
import { TransportError } from '../../src/transport/errors';
import { keyFingerprint } from '../../src/transport/key-pool';
import type { Dispatch } from '../../src/transport/types';
import { GOOD_KEY, capturingLogger, chatRequest, startHarness, type Harness } from '../deepseek/harness';
import { fakeNext, okResponse, openBody, rejectionOf, settle, statusError, streamHandler, textHandler, upstreamRequest } from './fakes';
import { recordingMetrics, spanRecorder, traceparentPropagator } from './telemetry-helpers';

type Line = Record<string, unknown>;

describe('attempt telemetry (fake next, injected clock)', () => {
  const { tracer, exporter } = spanRecorder();
  beforeAll(() => propagation.setGlobalPropagator(traceparentPropagator));
  afterAll(() => propagation.disable());
  afterEach(() => exporter.reset());

  function instrumented(next: Dispatch) {
    let clock = 0;
    const metrics = recordingMetrics();
    const lines: string[] = [];
    const dispatch = attemptTelemetry({
      tracer,
      metrics,
      logger: capturingLogger(lines),
      displayUrl: 'http://upstream.test:8080/v1',
      traceIdHeader: 'x-trace',
      errorType: (error) => (error instanceof TransportError ? `named ${error.kind}` : 'ABORTED'),
      now: () => clock,
    })(next);
    return { dispatch, metrics, logs: () => lines.map((line) => JSON.parse(line) as Line), tick: (ms: number) => (clock += ms) };
  }

  it('traces one exchange: a CLIENT span with its attempt, key and retry reason, traceparent on a copy of the headers', async () => {
    const next = fakeNext(okResponse(undefined, { 'x-trace': 'upstream-trace' }));
    const { dispatch, metrics, logs, tick } = instrumented(async (request, handler) => {
      tick(40);
      return next.dispatch(request, handler);
    });
    const request = upstreamRequest({ retry: { attempt: 2, reason: 'named status' }, key: { fingerprint: keyFingerprint(GOOD_KEY) } });

    await dispatch(request, textHandler());

    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('POST /chat/completions');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toEqual({
      'http.request.method': 'POST',
      'url.full': 'http://upstream.test:8080/v1/chat/completions',
      'http.request.resend_count': 1,
      'upstream.attempt': 2,
      'upstream.retry_reason': 'named status',
      'upstream.key_fingerprint': keyFingerprint(GOOD_KEY),
      'http.response.status_code': 200,
      'upstream.trace_id': 'upstream-trace',
    });
    const { traceId, spanId } = span.spanContext();
    expect(next.requests[0].headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(request.headers).not.toHaveProperty('traceparent');
    expect(metrics.attempts).toEqual([
      { method: 'POST', path: '/chat/completions', serverAddress: 'upstream.test', serverPort: 8080, status: 200, errorType: undefined, seconds: 0.04 },
    ]);
    expect(logs()).toEqual([
      expect.objectContaining({
        msg: 'upstream exchange',
        level: 20,
        status: 200,
        attempt: 2,
        traceId: 'upstream-trace',
        keyFingerprint: keyFingerprint(GOOD_KEY),
        durationMs: 40,
      }),
    ]);
  });

  it('names a failed exchange and takes its status and trace id from the error', async () => {
    const { dispatch, metrics, logs } = instrumented(fakeNext(statusError(503, { traceId: 'failed-trace' })).dispatch);

    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(exporter.getFinishedSpans()[0].attributes).toMatchObject({
      'http.response.status_code': 503,
      'upstream.trace_id': 'failed-trace',
      'error.type': 'named status',
      'upstream.attempt': 1,
    });
    expect(metrics.attempts[0]).toMatchObject({ status: 503, errorType: 'named status' });
    expect(logs()[0]).toMatchObject({ status: 503, error: 'named status' });
  });

  it("ends a stream's exchange when its body closes, with what cut it", async () => {
    const body = openBody();
    const { dispatch, metrics, tick } = instrumented(fakeNext(okResponse(body)).dispatch);
    await dispatch(upstreamRequest({ stream: true }), streamHandler());
    tick(300);
    expect(metrics.attempts).toHaveLength(0);

    body.destroy(new TransportError({ kind: 'timeout', phase: 'stream', timeoutMs: 300 }));
    await settle();

    expect(metrics.attempts).toEqual([expect.objectContaining({ status: 200, errorType: 'named timeout', seconds: 0.3 })]);
  });
});

describe('upstream exchange logging against the simulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('logs one debug line per attempt with path, status, attempt, trace id, duration and key fingerprint', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 503 });

    await h.client.chat(chatRequest());

    const exchanges = h.logs.map((line) => JSON.parse(line) as Line).filter((l) => l.msg === 'upstream exchange');
    expect(exchanges).toHaveLength(2);
    expect(exchanges.map((l) => [l.status, l.attempt, l.error])).toEqual([
      [503, 1, 'UPSTREAM_UNAVAILABLE'],
      [200, 2, undefined],
    ]);
    for (const line of exchanges) {
      expect(line).toMatchObject({ level: 20, method: 'POST', path: '/chat/completions', keyFingerprint: keyFingerprint(GOOD_KEY) });
      expect(line.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(typeof line.durationMs).toBe('number');
    }
    const text = h.logs.join('\n');
    expect(text).not.toContain(GOOD_KEY);
    expect(text).not.toContain('question number');
  });
});
