import { ErrorCode, UpstreamError } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { Breaker, breakerInterceptor, isHealthFailure } from '../../src/transport/breaker';
import { TransportError } from '../../src/transport/errors';
import { testConfig } from '../../src/config';
import { TransportCounters } from '../../src/transport/status';
import type { UpstreamResponse } from '../../src/transport/types';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { FAKE_TIMERS_KEEP, fakeNext, okResponse, rejectionOf, settle, statusError, textHandler, upstreamRequest, type Step } from './fakes';

/** 30 % failed calls, never two in a row: ✗✓✓✗✓✓✗✓✓✓, repeated. */
const THIRTY_PERCENT = [false, true, true, false, true, true, false, true, true, true];

describe('breaker policy (fake next, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: FAKE_TIMERS_KEEP }));
  afterEach(() => jest.useRealTimers());

  function breaker(...steps: Step[]) {
    const circuit = new Breaker({ failureRate: 0.5, windowMs: 10_000, minCalls: 2, cooldownMs: 1000, logger: silentLogger() });
    const counters = new TransportCounters();
    const next = fakeNext(...steps);
    return { circuit, counters, next, dispatch: breakerInterceptor(circuit, counters)(next.dispatch) };
  }

  async function open(dispatch: ReturnType<typeof breaker>['dispatch']): Promise<void> {
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));
  }

  /** A step whose answer the test gives when it wants (the probe in flight). */
  function gate(): { step: Step; open: () => void } {
    let release: (response: UpstreamResponse) => void = () => undefined;
    const answer = new Promise<UpstreamResponse>((resolve) => (release = resolve));
    return { step: () => answer, open: () => release(okResponse()) };
  }

  it('opens after minCalls failed calls, then fails at once with circuit-open and sends nothing', async () => {
    const { circuit, counters, next, dispatch } = breaker(statusError(503));
    await open(dispatch);
    expect(circuit.state).toBe('OPEN');

    // No timer is advanced: the rejection comes without waiting.
    const error = await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'circuit-open', failure: { retryInMs: 1000 }, retryable: false });
    expect(next.requests).toHaveLength(2);
    expect(counters.shortCircuited).toBe(1);
  });

  it('with the default settings, 30 % failed calls never open it, and a full outage then opens it within a second', async () => {
    const { deepseek } = testConfig();
    const circuit = new Breaker({
      failureRate: deepseek.breakerFailureRate,
      windowMs: deepseek.breakerWindowMs,
      minCalls: deepseek.breakerMinCalls,
      cooldownMs: deepseek.breakerCooldownMs,
      logger: silentLogger(),
    });
    let outage = false;
    let sent = 0;
    const next = fakeNext(() => {
      sent += 1;
      if (outage || !THIRTY_PERCENT[sent % THIRTY_PERCENT.length]) throw statusError(503);
      return okResponse();
    });
    const dispatch = breakerInterceptor(circuit, new TransportCounters())(next.dispatch);
    const call = () => dispatch(upstreamRequest(), textHandler()).catch(() => undefined);

    // 30 s at 50 calls per second.
    for (let i = 0; i < 1500; i++) {
      await jest.advanceTimersByTimeAsync(20);
      await call();
    }
    expect(circuit.state).toBe('CLOSED');

    outage = true;
    const started = Date.now();
    while (circuit.state === 'CLOSED') {
      await jest.advanceTimersByTimeAsync(20);
      await call();
    }
    expect(Date.now() - started).toBeLessThanOrEqual(1000);
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN']);
  });

  it('opens on the failure rate over the window once it holds minCalls calls, without a run of failures', async () => {
    const circuit = new Breaker({ failureRate: 0.5, windowMs: 10_000, minCalls: 6, cooldownMs: 1000, logger: silentLogger() });
    const next = fakeNext(statusError(503), okResponse(), statusError(503), okResponse(), statusError(503), okResponse(), statusError(503));
    const dispatch = breakerInterceptor(circuit, new TransportCounters())(next.dispatch);

    for (let i = 0; i < 6; i++) await dispatch(upstreamRequest(), textHandler()).catch(() => undefined);
    expect(circuit.state).toBe('CLOSED'); // 3 of 6 failed, but this call was a success
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('OPEN'); // 4 of 7
  });

  it('respects minCalls: failed calls below it, spread over the window, leave it closed', async () => {
    const circuit = new Breaker({ failureRate: 0.5, windowMs: 10_000, minCalls: 6, cooldownMs: 1000, logger: silentLogger() });
    const next = fakeNext(statusError(503), statusError(503), statusError(503), statusError(503), statusError(503), okResponse(), statusError(503));
    const dispatch = breakerInterceptor(circuit, new TransportCounters())(next.dispatch);

    for (let i = 0; i < 5; i++) await rejectionOf(dispatch(upstreamRequest(), textHandler()));
    await dispatch(upstreamRequest(), textHandler());
    expect(circuit.state).toBe('CLOSED'); // 5 of 6 failed, 5 in a row: the window had fewer than 6 calls until the success
    await jest.advanceTimersByTimeAsync(10_000);
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('CLOSED'); // the earlier calls left the window
  });

  it('counts health failures only: overload, outage, slowness; never an answer about the request or the account', () => {
    const statuses = [400, 401, 402, 403, 422, 404, 429, 500, 501, 503].map((status) => [status, isHealthFailure(statusError(status))]);
    expect(statuses).toEqual([
      [400, false],
      [401, false],
      [402, false],
      [403, false],
      [422, false],
      [404, true],
      [429, true],
      [500, true],
      [501, true],
      [503, true],
    ]);
    const others = [
      TransportError.network(new Error('reset')),
      new TransportError({ kind: 'timeout', phase: 'call', timeoutMs: 1 }),
      new TransportError({ kind: 'invalid-response', status: 200 }, { retryable: true }),
      new TransportError({ kind: 'invalid-response', status: 200 }, { retryable: false }),
      new TransportError({ kind: 'overloaded' }),
      new TransportError({ kind: 'closed' }),
      new Error('caller left'),
    ];
    expect(others.map(isHealthFailure)).toEqual([true, true, true, false, false, false, false]);
  });

  it('reports HALF_OPEN once the cooldown has passed, lets one probe through, fails the others at once, and closes on its success', async () => {
    const probe = gate();
    const { circuit, counters, next, dispatch } = breaker(statusError(503), statusError(503), probe.step, okResponse());
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(999);
    expect(circuit.state).toBe('OPEN');
    await jest.advanceTimersByTimeAsync(1);
    expect(circuit.state).toBe('HALF_OPEN');
    expect(circuit.probeInFlight).toBe(false);

    const first = dispatch(upstreamRequest(), textHandler());
    expect(circuit.probeInFlight).toBe(true);
    // No timer is advanced and the probe has no answer yet: the others are refused at once.
    const others = await Promise.all([1, 2].map(() => rejectionOf(dispatch(upstreamRequest(), textHandler()))));
    expect(others).toEqual([expect.any(TransportError), expect.any(TransportError)]);
    expect(others[0]).toMatchObject({ kind: 'circuit-open', failure: { probeInFlight: true }, retryable: false });
    expect(next.requests).toHaveLength(3); // the probe only
    expect(counters.shortCircuited).toBe(2);
    probe.open();

    await expect(first).resolves.toBe('{"ok":true}');
    expect(circuit).toMatchObject({ state: 'CLOSED', probeInFlight: false });
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');
    expect(next.requests).toHaveLength(4);
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
  });

  it('opens again, for a whole cooldown, when the probe fails', async () => {
    const { circuit, next, dispatch } = breaker(statusError(503), statusError(503), statusError(500), okResponse());
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(1000);

    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('OPEN');
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'OPEN']);
    await jest.advanceTimersByTimeAsync(999);
    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toMatchObject({ kind: 'circuit-open', failure: { retryInMs: 1 } });
    expect(next.requests).toHaveLength(3);
  });

  it('closes on any answer from DeepSeek to the probe, even a rejection', async () => {
    const { circuit, dispatch } = breaker(statusError(503), statusError(503), statusError(400));
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(1000);

    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('CLOSED');
  });

  it.each([
    ['the caller aborts it', 'abort'],
    ['a shutdown cuts it', new TransportError({ kind: 'closed' })],
    ['the local queue is full', new TransportError({ kind: 'overloaded' })],
  ] as const)('keeps the circuit half-open and gives the next call the probe when %s', async (_case, outcome) => {
    const caller = new AbortController();
    const probe: Step = outcome === 'abort' ? 'hang' : outcome;
    const { circuit, next, dispatch } = breaker(statusError(503), statusError(503), probe, okResponse());
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(1000);

    const probing = rejectionOf(dispatch(upstreamRequest({ signal: caller.signal }), textHandler()));
    await settle();
    if (outcome === 'abort') caller.abort(new Error('caller left'));
    await probing;

    expect(circuit).toMatchObject({ state: 'HALF_OPEN', probeInFlight: false });
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');
    expect(next.requests).toHaveLength(4);
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
  });

  it('never counts a call cut by shutdown while closed', async () => {
    const { circuit, counters, dispatch } = breaker(new TransportError({ kind: 'closed' }));

    for (let i = 0; i < 4; i++) await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('CLOSED');
    expect(counters.shortCircuited).toBe(0);
  });

  it('never counts a call its caller aborted while closed, whatever error reaches the breaker', async () => {
    // The caller leaves while the call runs and the error that comes back is a 503 (as from a
    // policy that did not look at the signal): the breaker goes by the caller's signal.
    let caller = new AbortController();
    const { circuit, next, dispatch } = breaker(() => {
      caller.abort(new Error('caller left'));
      throw statusError(503);
    });
    for (let i = 0; i < 4; i++) {
      caller = new AbortController();
      await rejectionOf(dispatch(upstreamRequest({ signal: caller.signal }), textHandler()));
    }

    expect(next.requests).toHaveLength(4);
    expect(circuit.state).toBe('CLOSED');
  });

  it('refuses a caller who already left with its own reason, even while open: no short-circuit counted', async () => {
    const { counters, dispatch } = breaker(statusError(503));
    await open(dispatch);
    const reason = new Error('caller left');

    expect(await rejectionOf(dispatch(upstreamRequest({ signal: AbortSignal.abort(reason) }), textHandler()))).toBe(reason);
    expect(counters.shortCircuited).toBe(0);
  });

  it('ignores the outcome of a call admitted before the circuit opened', async () => {
    const late = gate();
    const { circuit, dispatch } = breaker(late.step, statusError(503), statusError(503), okResponse());
    const slow = dispatch(upstreamRequest(), textHandler());
    await open(dispatch);
    expect(circuit.state).toBe('OPEN');

    late.open();
    await slow;

    expect(circuit.state).toBe('OPEN');
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN']);
  });
});

describe('circuit breaker against the simulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function openCircuit(): Promise<void> {
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await failureOf(() => h.client.chat(chatRequest()));
    await failureOf(() => h.client.chat(chatRequest()));
  }

  it('opens after breakerMinCalls failed calls in a row and then fails fast without a request', async () => {
    h = await startHarness({ config: { breakerMinCalls: 2, maxRetries: 0, breakerCooldownMs: 10_000 } });
    await openCircuit();
    expect(h.client.status().circuit).toBe('OPEN');
    const before = h.sim.counters.total;

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    // "At once" is pinned with fake timers above; here, no request and the public error.
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).message).toMatch(/^DeepSeek is unavailable \(circuit open/);
    expect((error as UpstreamError).details).toMatchObject({ retryable: false, attempts: 0 });
    expect(h.sim.counters.total).toBe(before);
    expect(h.client.status()).toMatchObject({ shortCircuited: 1, failures: 3 });
    expect(h.client.status().breakerTransitions.map((t) => t.to)).toEqual(['OPEN']);
  });

  it('counts a call once, after its retries: retried-then-successful calls keep it closed', async () => {
    h = await startHarness({ config: { breakerMinCalls: 2, maxRetries: 2 } });
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());

    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('lets one probe through after the cooldown (HALF_OPEN) and closes on its success', async () => {
    h = await startHarness({ config: { breakerMinCalls: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    // Reported as HALF_OPEN once the cooldown is over, so readiness checks let the probe come.
    await waitFor(() => h.client.status().circuit === 'HALF_OPEN');

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    const status = h.client.status();
    expect(status.circuit).toBe('CLOSED');
    expect(status.breakerTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
    expect(Number.isNaN(Date.parse(status.breakerTransitions[0].at))).toBe(false);
  });

  it('lets only the probe through while HALF_OPEN; the others fail at once, without a request', async () => {
    h = await startHarness({ sim: { latencyMs: 100 }, config: { breakerMinCalls: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await waitFor(() => h.client.status().circuit === 'HALF_OPEN');
    h.sim.requests.length = 0;

    const probe = h.client.chat(chatRequest());
    expect(h.client.status()).toMatchObject({ circuit: 'HALF_OPEN', probeInFlight: true });
    const others = await Promise.all([1, 2].map(() => failureOf(() => h.client.chat(chatRequest()))));

    for (const { error } of others) {
      expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
      expect((error as UpstreamError).message).toBe('DeepSeek is unavailable (circuit open after repeated failures; a probe call is testing it now)');
    }
    expect((await probe).content).toBeTruthy();
    expect(h.sim.requests).toHaveLength(1);
    expect(h.client.status()).toMatchObject({ circuit: 'CLOSED', probeInFlight: false, shortCircuited: 2 });
  });

  it('opens again when the probe fails', async () => {
    h = await startHarness({ config: { breakerMinCalls: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await waitFor(() => h.client.status().circuit === 'HALF_OPEN');
    h.sim.faults.inject({ kind: 'status', status: 500 });

    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
    expect(h.client.status().breakerTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'OPEN']);
  });

  it('stays closed through 30 % failed calls at the upstream, then opens on an outage after breakerMinCalls failed calls', async () => {
    h = await startHarness({ config: { maxRetries: 0, breakerCooldownMs: 10_000 } });
    expect(h.config).toMatchObject({ breakerFailureRate: 0.5, breakerWindowMs: 10_000, breakerMinCalls: 20 });
    for (let i = 0; i < 60; i++) {
      if (!THIRTY_PERCENT[i % THIRTY_PERCENT.length]) h.sim.faults.inject({ kind: 'status', status: 503 });
      await h.client.chat(chatRequest()).catch(() => undefined);
    }
    expect(h.client.status()).toMatchObject({ circuit: 'CLOSED', calls: 60, failures: 18 });

    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 100 });
    for (let i = 0; i < 19; i++) await failureOf(() => h.client.chat(chatRequest()));
    expect(h.client.status().circuit).toBe('CLOSED');
    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
    expect(h.sim.counters.total).toBe(80);
  });

  it('does not count rejections, auth or balance failures (400/401/402/422)', async () => {
    h = await startHarness({ config: { breakerMinCalls: 1, maxRetries: 0 } });
    for (const status of [400, 422, 401, 402]) {
      h.sim.faults.inject({ kind: 'status', status });
      await failureOf(() => h.client.chat(chatRequest()));
    }
    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('counts timeouts and 429s as failures', async () => {
    h = await startHarness({ config: { breakerMinCalls: 2, maxRetries: 0, timeoutMs: 200, breakerCooldownMs: 10_000 } });
    h.sim.faults.inject({ kind: 'status', status: 429 });
    h.sim.faults.inject({ kind: 'hang' });
    await failureOf(() => h.client.chat(chatRequest()));
    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
  });

  it('does not count a call cut by shutdown: neither a breaker failure nor in failures', async () => {
    h = await startHarness({ config: { breakerMinCalls: 1, maxRetries: 0, timeoutMs: 10_000 } });
    h.sim.faults.inject({ kind: 'hang' });
    const call = failureOf(() => h.client.chat(chatRequest()));
    await waitFor(() => h.sim.counters.inFlight === 1);

    await h.client.close();

    expect(((await call).error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect(h.client.status()).toMatchObject({ circuit: 'CLOSED', calls: 1, failures: 0 });
    expect(h.client.status().breakerTransitions).toEqual([]);
  });

  it('does not count a call that a shutdown caught in its backoff wait', async () => {
    h = await startHarness({ config: { breakerMinCalls: 1, maxRetries: 1, retryBaseMs: 100, retryMaxMs: 100 }, tuning: { random: () => 0.99 } });
    h.sim.faults.inject({ kind: 'status', status: 503 });
    const call = failureOf(() => h.client.chat(chatRequest()));
    await waitFor(() => h.client.status().retries === 1); // the 503 is in; the backoff wait began

    await h.client.close();

    // The retry wakes after the shutdown: it fails as closed, not as a network failure.
    expect(((await call).error as UpstreamError).message).toBe('The DeepSeek client is closed');
    expect(h.sim.counters.total).toBe(1);
    expect(h.client.status()).toMatchObject({ circuit: 'CLOSED', failures: 0 });
  });
});
