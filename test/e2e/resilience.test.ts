import type { Gateway } from '../../src/app';
import { startSimulator, type Simulator } from '../../src/simulator';
import { gql, startTestGateway } from '../helpers/gateway';
import { startHeldUpstream, type HeldUpstream } from '../helpers/held-upstream';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-resilience-test-key-01';
const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { id content } }`;

async function withGateway(
  env: Record<string, string>,
  run: (gateway: Gateway, simulator: Simulator) => Promise<void>,
  simulatorOptions: Parameters<typeof startSimulator>[0] = {},
): Promise<void> {
  const simulator = await startSimulator({ apiKeys: [KEY], ...simulatorOptions });
  const gateway = await startTestGateway({ DEEPSEEK_API_KEY: KEY, DEEPSEEK_BASE_URL: simulator.url, ...env });
  try {
    await run(gateway, simulator);
  } finally {
    await gateway.close();
    await simulator.close();
  }
}

/** Like `withGateway`, with a stand-in between gateway and simulator that holds calls until `release()`. */
async function withHeldUpstream(
  env: Record<string, string>,
  run: (gateway: Gateway, simulator: Simulator, upstream: HeldUpstream) => Promise<void>,
): Promise<void> {
  const simulator = await startSimulator({ apiKeys: [KEY] });
  const upstream = await startHeldUpstream(simulator.url);
  const gateway = await startTestGateway({ DEEPSEEK_API_KEY: KEY, DEEPSEEK_BASE_URL: upstream.url, ...env });
  try {
    await run(gateway, simulator, upstream);
  } finally {
    await gateway.close();
    await upstream.close();
    await simulator.close();
  }
}

describe('the resilient transport, seen through GraphQL', () => {
  it('retries 503, 503 and answers on the third attempt', async () => {
    await withGateway({ DEEPSEEK_RETRY_BASE_MS: '5' }, async (gateway, simulator) => {
      simulator.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
      const res = await gql(gateway, COMPLETION, { input: { prompt: 'retry me' } });
      expect(res.errors).toBeUndefined();
      expect(simulator.counters.byPath['/chat/completions']).toBe(3);
      const status = await gql<{ upstream: { retries: number; calls: number } }>(gateway, '{ upstream { retries calls } }');
      expect(status.data!.upstream).toEqual({ retries: 2, calls: 1 });
    });
  });

  it('opens the circuit after consecutive failures: fails fast, /readyz 503, then recovers', async () => {
    await withGateway(
      // The checks made while the circuit is open (three local requests) must finish inside
      // the cooldown: 2 s is far more than a loaded machine needs for them.
      { DEEPSEEK_MAX_RETRIES: '0', DEEPSEEK_BREAKER_MIN_CALLS: '2', DEEPSEEK_BREAKER_COOLDOWN_MS: '2000' },
      async (gateway, simulator) => {
        simulator.faults.inject({ kind: 'status', status: 500 }, { count: 2 });
        for (const n of [1, 2]) {
          const res = await gql(gateway, COMPLETION, { input: { prompt: `breaker ${n}` } });
          expect(res.errors![0]!.extensions!.code).toBe('UPSTREAM_UNAVAILABLE');
        }
        const open = await gql<{ upstream: { circuit: string } }>(gateway, '{ upstream { circuit } }');
        expect(open.data!.upstream.circuit).toBe('OPEN');
        expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);

        const sent = simulator.counters.total;
        const fast = await gql(gateway, COMPLETION, { input: { prompt: 'breaker 3' } });
        expect(fast.errors![0]!.extensions!.code).toBe('UPSTREAM_UNAVAILABLE');
        expect(simulator.counters.total).toBe(sent);

        // The status turns HALF_OPEN once the cooldown is over (without a call): wait for it.
        await waitFor(
          async () => (await gql<{ upstream: { circuit: string } }>(gateway, '{ upstream { circuit } }')).data!.upstream.circuit === 'HALF_OPEN',
          { intervalMs: 50, what: 'the cooldown to end' },
        );
        const probe = await gql(gateway, COMPLETION, { input: { prompt: 'breaker probe' } });
        expect(probe.errors).toBeUndefined();
        const closed = await gql<{ upstream: { circuit: string; circuitTransitions: Array<{ to: string }> } }>(
          gateway,
          '{ upstream { circuit circuitTransitions { to } } }',
        );
        expect(closed.data!.upstream.circuit).toBe('CLOSED');
        expect(closed.data!.upstream.circuitTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
        expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
      },
    );
  });

  it('refuses work with OVERLOADED when the concurrency limit and its queue are full', async () => {
    await withHeldUpstream({ DEEPSEEK_MAX_CONCURRENCY: '1', DEEPSEEK_MAX_QUEUE: '1' }, async (gateway, simulator, upstream) => {
      const ask = (n: number) => gql(gateway, COMPLETION, { input: { prompt: `overload ${n}`, cache: 'BYPASS' } });
      const [first, second] = [ask(1), ask(2)];
      // The first call holds the only slot (held upstream) and the second waits in the queue
      // before the third arrives; the third is answered before the first may finish.
      await waitFor(() => upstream.received === 1 && gateway.services.deepseek.status().queued === 1, {
        what: 'one call in flight and one queued',
      });
      const third = await ask(3);
      upstream.release();
      const results = [await first, await second, third];
      const codes = results.map((r) => r.errors?.[0]?.extensions?.code ?? 'OK').sort();
      expect(codes).toEqual(['OK', 'OK', 'OVERLOADED']);
      expect(simulator.counters.maxInFlight).toBe(1);
    });
  });

  it('aborts the upstream call when the only client waiting for it disconnects', async () => {
    await withGateway(
      {},
      async (gateway, simulator) => {
        const controller = new AbortController();
        const pending = gql(gateway, COMPLETION, { input: { prompt: 'nobody waits for me' } }, { signal: controller.signal });
        await waitFor(() => simulator.counters.inFlight === 1, { what: 'the upstream call to start' });
        expect(simulator.counters.inFlight).toBe(1);
        controller.abort();
        await expect(pending).rejects.toThrow();
        // Released by the abort: the call would otherwise be held 30 s; 5 s is out of reach
        // for a loaded machine passing an abort on.
        await waitFor(() => simulator.counters.inFlight === 0, { timeoutMs: 5_000, what: 'the upstream call to end' });
        expect(simulator.counters.inFlight).toBe(0);
        const status = await gql<{ upstream: { inFlight: number } }>(gateway, '{ upstream { inFlight } }');
        expect(status.data!.upstream.inFlight).toBe(0);
      },
      { latencyMs: 30_000 },
    );
  });

  it('keeps a shared upstream call running while one of its waiters remains', async () => {
    await withHeldUpstream({}, async (gateway, simulator, upstream) => {
      const controller = new AbortController();
      const leaving = gql(gateway, COMPLETION, { input: { prompt: 'shared call' } }, { signal: controller.signal });
      const staying = gql(gateway, COMPLETION, { input: { prompt: 'shared call' } });
      // Both operations wait on the one upstream call (held) before one of them leaves.
      await waitFor(() => upstream.received === 1 && gateway.services.completions.stats().joinedInFlight === 1, {
        what: 'the second operation to join the call',
      });
      controller.abort();
      await expect(leaving).rejects.toThrow();
      upstream.release();
      const answer = await staying;
      expect(answer.errors).toBeUndefined();
      expect(simulator.counters.byPath['/chat/completions']).toBe(1);
    });
  });

  it('spreads calls over several keys and drops a key DeepSeek rejects', async () => {
    const bad = 'sk-revoked-key-000000';
    await withGateway({ DEEPSEEK_API_KEYS: `${bad},${KEY}` }, async (gateway, simulator) => {
      for (const n of [1, 2, 3]) {
        const res = await gql(gateway, COMPLETION, { input: { prompt: `rotation ${n}` } });
        expect(res.errors).toBeUndefined();
      }
      const used = simulator.requests.map((r) => String(r.headers.authorization));
      expect(used.filter((h) => h.endsWith(bad))).toHaveLength(1);
      const status = await gql<{ upstream: { keys: Array<{ active: boolean; reason: string | null; fingerprint: string }> } }>(
        gateway,
        '{ upstream { keys { fingerprint active reason } } }',
      );
      expect(status.data!.upstream.keys.map((k) => [k.active, k.reason])).toEqual(
        expect.arrayContaining([
          [false, 'UNAUTHORIZED'],
          [true, null],
        ]),
      );
      expect(status.data!.upstream.keys).toHaveLength(2);
      expect(JSON.stringify(status)).not.toContain(bad);
    });
  });
});
