import { ErrorCode, OverloadedError } from '../../src/errors';
import { Bulkhead, bulkheadInterceptor } from '../../src/transport/bulkhead';
import { TransportError } from '../../src/transport/errors';
import { TransportCounters } from '../../src/transport/status';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from '../deepseek/harness';
import { fakeNext, okResponse, openBody, rejectionOf, settle, statusError, streamHandler, textHandler, upstreamRequest, type Step } from './fakes';

describe('bulkhead policy (fake next)', () => {
  function bulkheaded(capacity: number, queueCapacity: number, ...steps: Step[]) {
    const bulkhead = new Bulkhead(capacity, queueCapacity);
    const counters = new TransportCounters();
    const next = fakeNext(...steps);
    return { bulkhead, counters, next, dispatch: bulkheadInterceptor(bulkhead, counters)(next.dispatch) };
  }

  it('frees the slot of a JSON answer before the call resolves', async () => {
    const { bulkhead, dispatch } = bulkheaded(1, 10, okResponse());

    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');

    expect(bulkhead.inFlight).toBe(0);
  });

  it('starts the exchange in the same turn when a slot is free, and queues it when none is', async () => {
    const { bulkhead, next, dispatch } = bulkheaded(1, 10, okResponse(), okResponse());
    const first = dispatch(upstreamRequest(), textHandler());
    // No promise waited on: the request has reached the next policy already.
    expect(next.requests).toHaveLength(1);
    expect(bulkhead.inFlight).toBe(1);
    const second = dispatch(upstreamRequest(), textHandler());
    expect(next.requests).toHaveLength(1);
    expect(bulkhead.queued).toBe(1);
    await expect(Promise.all([first, second])).resolves.toEqual(['{"ok":true}', '{"ok":true}']);
    expect(next.requests).toHaveLength(2);
    expect(bulkhead.inFlight).toBe(0);
  });

  it('does not take a slot for a caller who already left', async () => {
    const { bulkhead, next, dispatch } = bulkheaded(1, 10, okResponse());
    const controller = new AbortController();
    const reason = new Error('gone');
    controller.abort(reason);
    expect(await rejectionOf(dispatch(upstreamRequest({ signal: controller.signal }), textHandler()))).toBe(reason);
    expect(next.requests).toHaveLength(0);
    expect(bulkhead.inFlight).toBe(0);
  });

  it("holds a stream's slot until its body closes, not just until its headers are in", async () => {
    const body = openBody();
    const { bulkhead, next, dispatch } = bulkheaded(1, 10, okResponse(body), okResponse());
    const handler = streamHandler();

    await dispatch(upstreamRequest({ stream: true }), handler);
    const second = dispatch(upstreamRequest(), textHandler());
    await settle();
    expect(bulkhead).toMatchObject({ inFlight: 1, queued: 1 });
    expect(next.requests).toHaveLength(1);

    body.destroy();
    await expect(second).resolves.toBe('{"ok":true}');
    expect(bulkhead).toMatchObject({ inFlight: 0, queued: 0 });
    expect(handler.ends).toEqual([undefined]); // closed by its reader: not a failure
  });

  it('fails at once with an overloaded TransportError when the queue is full, and counts it', async () => {
    const caller = new AbortController();
    const { bulkhead, counters, next, dispatch } = bulkheaded(1, 1, 'hang');
    const running = rejectionOf(dispatch(upstreamRequest({ signal: caller.signal }), textHandler()));
    const queued = rejectionOf(dispatch(upstreamRequest({ signal: caller.signal }), textHandler()));
    await settle();

    // No time passes here: no timers exist that could be waited on.
    const error = await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'overloaded', retryable: false });
    expect(counters.rejectedOverloaded).toBe(1);
    expect(bulkhead).toMatchObject({ inFlight: 1, queued: 1 });
    caller.abort();
    await Promise.all([running, queued]);
    expect(next.requests).toHaveLength(1);
    expect(bulkhead).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('frees the slot of an attempt that failed, for the next one', async () => {
    const { bulkhead, dispatch } = bulkheaded(1, 0, statusError(503), okResponse());

    await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(bulkhead.inFlight).toBe(0);
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');
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

  it('lets a waiter whose signal aborts leave the queue at once, with the reason', async () => {
    const bulkhead = new Bulkhead(1, 5);
    const release = await bulkhead.acquire();
    const controller = new AbortController();
    const waiting = rejectionOf(bulkhead.acquire(controller.signal));
    expect(bulkhead.queued).toBe(1);

    const reason = new Error('gone');
    controller.abort(reason);

    expect(await waiting).toBe(reason);
    expect(bulkhead.queued).toBe(0);
    release();
    expect(bulkhead.inFlight).toBe(0);
  });

  it('keeps the FIFO order of the rest when waiters at the head, in the middle and at the tail abort', async () => {
    const bulkhead = new Bulkhead(1, 10);
    const first = await bulkhead.acquire();
    const controllers = [0, 1, 2, 3, 4, 5].map(() => new AbortController());
    const order: number[] = [];
    const waiting = controllers.map((controller, n) =>
      bulkhead.acquire(controller.signal).then(
        (release) => {
          order.push(n);
          release();
        },
        () => undefined,
      ),
    );
    expect(bulkhead.queued).toBe(6);
    for (const n of [0, 3, 5]) controllers[n]!.abort(new Error(`gone ${n}`));
    expect(bulkhead.queued).toBe(3);
    // The queue still works at both ends: one more joins behind the survivors.
    const last = bulkhead.acquire().then((release) => {
      order.push(6);
      release();
    });
    expect(bulkhead.queued).toBe(4);
    first();
    await Promise.all([...waiting, last]);
    expect(order).toEqual([1, 2, 4, 6]);
    expect(bulkhead.queued).toBe(0);
    expect(bulkhead.inFlight).toBe(0);
  });
});

describe('bulkhead against the simulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('keeps at most maxConcurrency calls in flight: 100 concurrent calls, 5 slots, all succeed', async () => {
    // The deadline covers the wait for a slot: a generous one, so a loaded machine cannot cut it.
    h = await startHarness({ sim: { latencyMs: 20 }, config: { maxConcurrency: 5, maxQueue: 100, timeoutMs: 60_000 } });

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

  it('fails with OVERLOADED when the queue is full', async () => {
    // The running call hangs until this test lets it go, so nothing here depends on timing.
    h = await startHarness({ config: { maxConcurrency: 1, maxQueue: 1, timeoutMs: 60_000 } });
    h.sim.faults.inject({ kind: 'hang' });
    const holder = new AbortController();
    const running = failureOf(() => h.client.chat(chatRequest(), { signal: holder.signal }));
    const queued = h.client.chat(chatRequest());
    await waitFor(() => h.client.status().queued === 1 && h.sim.counters.inFlight === 1);

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect(error).toBeInstanceOf(OverloadedError);
    expect((error as OverloadedError).code).toBe(ErrorCode.OVERLOADED);
    expect(h.client.status()).toMatchObject({ inFlight: 1, queued: 1, rejectedOverloaded: 1 });
    holder.abort();
    expect((await running).error).toMatchObject({ name: 'AbortError' });
    await expect(queued).resolves.toMatchObject({ finishReason: 'stop' });
    expect(h.sim.counters.total).toBe(2);
  });

  it('lets a queued call whose signal aborts leave the queue at once', async () => {
    h = await startHarness({ config: { maxConcurrency: 1, maxQueue: 5, timeoutMs: 60_000 } });
    h.sim.faults.inject({ kind: 'hang' });
    const holder = new AbortController();
    const running = failureOf(() => h.client.chat(chatRequest(), { signal: holder.signal }));
    const controller = new AbortController();
    const queued = h.client.chat(chatRequest(), { signal: controller.signal });
    await waitFor(() => h.client.status().queued === 1 && h.sim.counters.inFlight === 1);

    controller.abort();

    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    expect(h.client.status().queued).toBe(0);
    holder.abort();
    await running;
    expect(h.sim.counters.total).toBe(1);
  });
});
