import { ErrorCode, UpstreamError } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { Breaker, breakerInterceptor, isHealthFailure } from '../../src/transport/breaker';
import { TransportError } from '../../src/transport/errors';
import { TransportCounters } from '../../src/transport/status';
import type { UpstreamResponse } from '../../src/transport/types';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { FAKE_TIMERS_KEEP, fakeNext, okResponse, rejectionOf, settle, statusError, textHandler, upstreamRequest, type Step } from './fakes';

describe('breaker policy (fake next, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: FAKE_TIMERS_KEEP }));
  afterEach(() => jest.useRealTimers());

  function breaker(...steps: Step[]) {
    const circuit = new Breaker({ threshold: 2, cooldownMs: 1000, logger: silentLogger() });
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

  it('opens after threshold failed calls, then fails at once with circuit-open and sends nothing', async () => {
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
      new TransportError({ kind: 'no-key', reason: 'unauthorized' }),
      new Error('caller left'),
    ];
    expect(others.map(isHealthFailure)).toEqual([true, true, true, false, false, false, false]);
  });

  it('reports HALF_OPEN once the cooldown has passed, lets one probe through, and closes on its success', async () => {
    const probe = gate();
    const { circuit, next, dispatch } = breaker(statusError(503), statusError(503), probe.step, okResponse());
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(999);
    expect(circuit.state).toBe('OPEN');
    await jest.advanceTimersByTimeAsync(1);
    expect(circuit.state).toBe('HALF_OPEN');

    const first = dispatch(upstreamRequest(), textHandler());
    const second = dispatch(upstreamRequest(), textHandler());
    await settle();
    expect(next.requests).toHaveLength(3); // the probe only
    probe.open();

    await expect(Promise.all([first, second])).resolves.toEqual(['{"ok":true}', '{"ok":true}']);
    expect(next.requests).toHaveLength(4);
    expect(circuit.state).toBe('CLOSED');
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
  });

  it('opens again when a half-open probe gets no answer (a full local queue counts too)', async () => {
    const { circuit, dispatch } = breaker(statusError(503), statusError(503), new TransportError({ kind: 'overloaded' }));
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(1000);

    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(circuit.state).toBe('OPEN');
    expect(circuit.transitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'OPEN']);
  });

  it('lets a call waiting on the probe leave as soon as its caller gives up', async () => {
    const probe = gate();
    const { dispatch } = breaker(statusError(503), statusError(503), probe.step, okResponse());
    await open(dispatch);
    await jest.advanceTimersByTimeAsync(1000);
    const probing = dispatch(upstreamRequest(), textHandler());
    const caller = new AbortController();
    const waiting = rejectionOf(dispatch(upstreamRequest({ signal: caller.signal }), textHandler()));
    await settle();

    const reason = new Error('caller left');
    caller.abort(reason);

    expect(await waiting).toBe(reason);
    probe.open();
    await probing;
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

  it('opens after breakerThreshold consecutive failed calls and then fails fast without a request', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 10_000 } });
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
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 2 } });
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());

    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('lets one probe through after the cooldown (HALF_OPEN) and closes on its success', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
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

  it('lets only the probe through while HALF_OPEN; the others follow its success', async () => {
    h = await startHarness({ sim: { latencyMs: 100 }, config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await waitFor(() => h.client.status().circuit === 'HALF_OPEN');
    h.sim.requests.length = 0;

    const results = await Promise.all([1, 2, 3].map(() => h.client.chat(chatRequest())));

    expect(results).toHaveLength(3);
    const [probe, ...rest] = h.sim.requests.map((r) => r.at);
    expect(rest.every((at) => at - probe >= 90)).toBe(true);
    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('opens again when the probe fails', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await waitFor(() => h.client.status().circuit === 'HALF_OPEN');
    h.sim.faults.inject({ kind: 'status', status: 500 });

    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
    expect(h.client.status().breakerTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'OPEN']);
  });

  it('does not count rejections, auth or balance failures (400/401/402/422)', async () => {
    h = await startHarness({ config: { breakerThreshold: 1, maxRetries: 0 } });
    for (const status of [400, 422, 401, 402]) {
      h.sim.faults.inject({ kind: 'status', status });
      await failureOf(() => h.client.chat(chatRequest()));
    }
    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('counts timeouts and 429s as failures', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, timeoutMs: 200, breakerCooldownMs: 10_000 } });
    h.sim.faults.inject({ kind: 'status', status: 429 });
    h.sim.faults.inject({ kind: 'hang' });
    await failureOf(() => h.client.chat(chatRequest()));
    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
  });
});
