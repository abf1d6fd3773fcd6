import { ErrorCode, UpstreamError } from '../../src/errors';
import { Deadline } from '../../src/lib/abort';
import { createNoopMeter } from '@opentelemetry/api';
import { noopInstruments } from '../../src/telemetry/instruments';
import { silentLogger } from '../../src/telemetry/logger';
import { upstreamMetrics } from '../../src/telemetry/metrics';
import { callTelemetry } from '../../src/transport/call-telemetry';
import { deadlineInterceptor } from '../../src/transport/deadline';
import { TransportError, transportErrorType } from '../../src/transport/errors';
import { retryInterceptor } from '../../src/transport/retry';
import { RetryBudget } from '../../src/transport/retry-budget';
import { TransportCounters } from '../../src/transport/status';
import { compose } from '../../src/transport/types';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { FAKE_TIMERS_KEEP, fakeNext, okResponse, openBody, rejectionOf, streamHandler, textHandler, upstreamRequest } from './fakes';

/** A promise with a flag that says whether it has settled yet. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}

describe('deadline policy (fake next, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: FAKE_TIMERS_KEEP }));
  afterEach(() => jest.useRealTimers());
  const deadline = deadlineInterceptor({ timeoutMs: 500, streamMaxMs: 2000 });

  it('fails a hung call with a call timeout once timeoutMs has passed, not before', async () => {
    const next = fakeNext('hang');
    const call = tracked(rejectionOf(deadline(next.dispatch)(upstreamRequest(), textHandler())));

    await jest.advanceTimersByTimeAsync(499);
    expect(call.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(1);

    const error = await call.promise;
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'timeout', failure: { phase: 'call', timeoutMs: 500 }, retryable: false });
    expect(next.requests[0].signal?.aborted).toBe(true); // the exchange was told to stop
    expect(jest.getTimerCount()).toBe(0);
  });

  it('hands inner policies a copy with the deadline and a signal that fires at it', async () => {
    const caller = new AbortController();
    const request = upstreamRequest({ signal: caller.signal });
    const next = fakeNext(okResponse());

    await deadline(next.dispatch)(request, textHandler());

    const inner = next.requests[0];
    expect(inner).not.toBe(request);
    expect(inner.deadline).toEqual({ at: Date.now() + 500 });
    expect(inner.signal).not.toBe(caller.signal);
    expect(request.deadline).toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
  });

  it("rethrows a caller's abort as the caller's reason, not as a timeout", async () => {
    const caller = new AbortController();
    const call = rejectionOf(deadline(fakeNext('hang').dispatch)(upstreamRequest({ signal: caller.signal }), textHandler()));
    const reason = new Error('caller left');

    caller.abort(reason);

    expect(await call).toBe(reason);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('bounds a non-stream body too: keep-alive blank lines past the deadline end in a call timeout', async () => {
    const body = openBody();
    const handler = textHandler();
    const call = rejectionOf(deadline(fakeNext(okResponse(body)).dispatch)(upstreamRequest(), handler));
    for (let t = 0; t < 10; t++) {
      body.push('\n');
      await jest.advanceTimersByTimeAsync(50);
    }

    expect(await call).toMatchObject({ kind: 'timeout', failure: { phase: 'call' } });
    expect(handler.ends).toEqual([]); // a failed call never reports an ended response
  });

  it("stops bounding a stream at its headers; the stream lifetime bounds the body and names the cut", async () => {
    const body = openBody();
    const handler = streamHandler();
    const response = await deadline(fakeNext(okResponse(body)).dispatch)(upstreamRequest({ stream: true }), handler);

    await jest.advanceTimersByTimeAsync(1999);
    expect(response.body.destroyed).toBe(false); // far past timeoutMs, still flowing
    await jest.advanceTimersByTimeAsync(1);

    expect(body.destroyed).toBe(true);
    expect(body.errored).toMatchObject({ kind: 'timeout', failure: { phase: 'stream', timeoutMs: 2000 } });
    await new Promise((resolve) => setImmediate(resolve));
    expect(handler.ends).toEqual([body.errored]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('names a stream lifetime shorter than the call deadline a stream timeout even before the headers', async () => {
    const short = deadlineInterceptor({ timeoutMs: 500, streamMaxMs: 300 });
    const call = rejectionOf(short(fakeNext('hang').dispatch)(upstreamRequest({ stream: true }), streamHandler()));

    await jest.advanceTimersByTimeAsync(300);

    expect(await call).toMatchObject({ kind: 'timeout', failure: { phase: 'stream', timeoutMs: 300 } });
  });

  it('ends a stream whose body is read to the end without an error and without timers', async () => {
    const body = openBody();
    const handler = streamHandler();
    const response = await deadline(fakeNext(okResponse(body)).dispatch)(upstreamRequest({ stream: true }), handler);
    body.push('data: [DONE]\n\n');
    body.push(null);
    for await (const chunk of response.body) expect(String(chunk)).toContain('[DONE]');
    await new Promise((resolve) => setImmediate(resolve));

    expect(handler.ends).toEqual([undefined]);
    expect(jest.getTimerCount()).toBe(0);
  });

  /** Call telemetry (which counts attempts) → deadline → retry, around a fake next. */
  function chain(next: ReturnType<typeof fakeNext>, timeoutMs: number) {
    return compose(
      next.dispatch,
      callTelemetry({ ...noopInstruments(), metrics: upstreamMetrics(createNoopMeter()), displayUrl: 'http://upstream', errorType: transportErrorType }),
      deadlineInterceptor({ timeoutMs, streamMaxMs: 5000 }),
      retryInterceptor({
        maxRetries: 10,
        baseMs: 100,
        maxMs: 100,
        budget: new RetryBudget({ ratio: 1 }),
        counters: new TransportCounters(),
        logger: silentLogger(),
        errorType: transportErrorType,
        random: () => 0.99,
      }),
    );
  }

  it('covers every attempt and backoff wait: a call failing forever ends with its last failure before the deadline', async () => {
    const next = fakeNext(new TransportError({ kind: 'status', status: 503, body: '' }, { retryable: true }));
    // Waits of 99 ms: attempts at 0, 99, 198, 297 and 396; the next wait would end past 400.
    const call = tracked(rejectionOf(chain(next, 400)(upstreamRequest(), textHandler())));

    await jest.advanceTimersByTimeAsync(396);

    expect(call.settled()).toBe(true);
    expect(await call.promise).toMatchObject({ kind: 'status', attempts: 5 });
    expect(next.requests.map((r) => r.retry?.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it('times out across attempts when one attempt hangs after a retry', async () => {
    const next = fakeNext(new TransportError({ kind: 'status', status: 503, body: '' }, { retryable: true }), 'hang');
    const call = tracked(rejectionOf(chain(next, 500)(upstreamRequest(), textHandler())));

    await jest.advanceTimersByTimeAsync(499);
    expect(call.settled()).toBe(false);
    await jest.advanceTimersByTimeAsync(1);

    expect(await call.promise).toMatchObject({ kind: 'timeout', failure: { phase: 'call', timeoutMs: 500 }, attempts: 2 });
  });
});

describe('Deadline', () => {
  it('clears its timer when disposed and reports the time left', () => {
    const deadline = new Deadline(10_000);
    expect(deadline.expired).toBe(false);
    expect(deadline.remainingMs()).toBeGreaterThan(9_000);
    deadline.dispose();
    expect(deadline.expired).toBe(false);
  });

  it('aborts with the reason its owner names, once its time has passed', () => {
    jest.useFakeTimers();
    try {
      const named = new Error('named by the owner');
      const deadline = new Deadline(100, () => named);
      jest.advanceTimersByTime(99);
      expect(deadline.expired).toBe(false);
      jest.advanceTimersByTime(1);
      expect(deadline.signal.reason).toBe(named);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('call deadline against the simulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('fails a hung request with UPSTREAM_TIMEOUT once timeoutMs has passed', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'hang' });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect((error as UpstreamError).message).toBe('DeepSeek did not answer within 500 ms');
    expect((error as UpstreamError).details.attempts).toBe(1);
    // Never early (a lower bound only; "not much later" is pinned with fake timers above).
    expect(elapsedMs).toBeGreaterThanOrEqual(480);
    // The hung request was aborted, not left open at the upstream.
    await waitFor(() => h.sim.counters.inFlight === 0);
  });

  it('fails with UPSTREAM_TIMEOUT while blank lines keep arriving past the deadline', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'blank-lines', intervalMs: 20 });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
  });

  it('times out across attempts when one attempt hangs after a retry', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'status', status: 503 });
    h.sim.faults.inject({ kind: 'hang' });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect((error as UpstreamError).details.attempts).toBe(2);
  });

  it('retries an attempt that gets no response headers within headersTimeoutMs, inside the deadline', async () => {
    h = await startHarness({ config: { timeoutMs: 10_000, headersTimeoutMs: 300 } });
    h.sim.faults.inject({ kind: 'hang' });

    const result = await h.client.chat(chatRequest());

    // A success at all means the hung attempt was given up long before the 10 s deadline.
    expect(result.content).toBeTruthy();
    expect(h.sim.counters.byPath['/chat/completions']).toBe(2);
    expect(h.client.status().retries).toBe(1);
    await waitFor(() => h.sim.counters.inFlight === 0); // the hung attempt was closed, not left open
  });

  it('does not cut a queued request that has its headers and sends keep-alive blank lines', async () => {
    h = await startHarness({ config: { timeoutMs: 10_000, headersTimeoutMs: 200 } });
    h.sim.faults.inject({ kind: 'blank-lines', count: 10, intervalMs: 50 });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    expect(h.sim.counters.byPath['/chat/completions']).toBe(1);
  });
});
