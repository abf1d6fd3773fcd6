import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';

describe('cancellation', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('aborts the in-flight request at the upstream and frees its slot; not a breaker failure', async () => {
    // The upstream never answers: only the abort can end this call before its 60 s deadline.
    h = await startHarness({ config: { breakerMinCalls: 1, timeoutMs: 60_000 } });
    h.sim.faults.inject({ kind: 'hang' });
    const controller = new AbortController();
    const call = h.client.chat(chatRequest(), { signal: controller.signal });
    await waitFor(() => h.sim.counters.inFlight === 1);

    controller.abort();
    const { error } = await failureOf(() => call);

    expect(error).toMatchObject({ name: 'AbortError' });
    await waitFor(() => h.sim.counters.inFlight === 0);
    expect(h.sim.counters.total).toBe(1);
    expect(h.client.status()).toMatchObject({ circuit: 'CLOSED', inFlight: 0, failures: 0, retries: 0 });
  });

  it('rejects at once with the reason of an already aborted signal, without a request', async () => {
    h = await startHarness();
    const reason = new Error('gone');

    const { error } = await failureOf(() => h.client.chat(chatRequest(), { signal: AbortSignal.abort(reason) }));

    expect(error).toBe(reason);
    expect(h.sim.counters.total).toBe(0);
  });

  it('does not retry an aborted call during its backoff wait', async () => {
    h = await startHarness({ config: { retryBaseMs: 500, retryMaxMs: 500 }, tuning: { random: () => 0.99 } });
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 3 });
    const controller = new AbortController();
    const call = h.client.chat(chatRequest(), { signal: controller.signal });
    await waitFor(() => h.sim.counters.total === 1);

    controller.abort();

    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    // That no attempt follows later is pinned with fake timers in retry.test.ts.
    expect(h.sim.counters.total).toBe(1);
  });
});
