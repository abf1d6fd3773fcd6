import { ErrorCode, OverloadedError } from '../../src/errors';
import { Bulkhead } from '../../src/transport/bulkhead';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';

describe('bulkhead', () => {
  describe('against the simulator', () => {
    let h: Harness;
    afterEach(async () => {
      await h.close();
    });

    it('keeps at most maxConcurrency calls in flight: 100 concurrent calls, 5 slots, all succeed', async () => {
      h = await startHarness({ sim: { latencyMs: 20 }, config: { maxConcurrency: 5, maxQueue: 100 } });

      const results = await Promise.all(Array.from({ length: 100 }, () => h.client.chat(chatRequest())));

      expect(results).toHaveLength(100);
      expect(new Set(results.map((r) => r.content)).size).toBe(100);
      expect(h.sim.counters.total).toBe(100);
      expect(h.sim.counters.maxInFlight).toBeLessThanOrEqual(5);
      expect(h.sim.counters.connectionsOpened).toBeLessThanOrEqual(5);
      const status = h.client.status();
      expect(status).toMatchObject({ inFlight: 0, queued: 0, maxConcurrency: 5, maxQueue: 100 });
      expect(status.connections).toBeLessThanOrEqual(5);
    });

    it('fails at once with OVERLOADED when the queue is full', async () => {
      h = await startHarness({ sim: { latencyMs: 300 }, config: { maxConcurrency: 1, maxQueue: 1 } });
      const running = h.client.chat(chatRequest());
      const queued = h.client.chat(chatRequest());
      await waitFor(() => h.client.status().queued === 1);

      const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

      expect(error).toBeInstanceOf(OverloadedError);
      expect((error as OverloadedError).code).toBe(ErrorCode.OVERLOADED);
      expect(elapsedMs).toBeLessThan(100);
      expect(h.client.status()).toMatchObject({ inFlight: 1, queued: 1, rejectedOverloaded: 1 });
      await Promise.all([running, queued]);
      expect(h.sim.counters.total).toBe(2);
    });

    it('lets a queued call whose signal aborts leave the queue at once', async () => {
      h = await startHarness({ sim: { latencyMs: 300 }, config: { maxConcurrency: 1, maxQueue: 5 } });
      const running = h.client.chat(chatRequest());
      const controller = new AbortController();
      const queued = h.client.chat(chatRequest(), { signal: controller.signal });
      await waitFor(() => h.client.status().queued === 1);

      controller.abort();

      await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
      expect(h.client.status().queued).toBe(0);
      await running;
      expect(h.sim.counters.total).toBe(1);
    });
  });

  describe('the slot queue', () => {
    it('hands slots out in FIFO order', async () => {
      const bulkhead = new Bulkhead(1, 10);
      const order: number[] = [];
      const first = await bulkhead.acquire();
      const waiting = [1, 2, 3].map((n) =>
        bulkhead.acquire().then((release) => {
          order.push(n);
          release();
        }),
      );
      expect(bulkhead.queued).toBe(3);
      first();
      await Promise.all(waiting);
      expect(order).toEqual([1, 2, 3]);
      expect(bulkhead.inFlight).toBe(0);
    });

    it('ignores a second release of the same slot', async () => {
      const bulkhead = new Bulkhead(2, 0);
      const release = await bulkhead.acquire();
      release();
      release();
      expect(bulkhead.inFlight).toBe(0);
    });
  });
});
