import { Writable } from 'node:stream';
import { ResponseFlow } from '../../src/http/response-flow';

/**
 * A response whose socket takes a write only when the test says so: `take()` completes
 * the oldest pending write, as a client reading it would let the kernel do.
 */
class HeldResponse extends Writable {
  readonly written: string[] = [];
  readonly #callbacks: Array<() => void> = [];

  constructor() {
    super({ highWaterMark: 1 << 20, decodeStrings: false });
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(String(chunk));
    this.#callbacks.push(() => callback());
  }

  /** The socket takes the oldest pending write. */
  take(): void {
    this.#callbacks.shift()?.();
  }

  get waiting(): number {
    return this.#callbacks.length;
  }
}

/** An iterator over `values` that counts how many times it was asked for the next one. */
function counted(values: string[]): AsyncIterator<string> & { pulls: number; returned: boolean } {
  const iterator = {
    pulls: 0,
    returned: false,
    next: async () => {
      iterator.pulls += 1;
      const value = values.shift();
      return value === undefined ? { value: undefined, done: true as const } : { value, done: false as const };
    },
    return: async () => {
      iterator.returned = true;
      return { value: undefined, done: true as const };
    },
  };
  return iterator;
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ResponseFlow: flow control for a streaming HTTP response', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 0;
  });

  it('pulls the next event only once the socket has taken what was written before it', async () => {
    const response = new HeldResponse();
    const flow = new ResponseFlow(response, { stallTimeoutMs: 10_000, now: clock });
    const source = counted(['a', 'b', 'c']);
    const paced = flow.paced(source);

    const first = await paced.next();
    flow.write(String(first.value));
    const second = paced.next();
    await settle();
    // The client has not read 'a' yet: 'b' stays in the source (the stream hub's buffer).
    expect(source.pulls).toBe(1);
    response.take();
    expect((await second).value).toBe('b');
    expect(source.pulls).toBe(2);
    flow.close();
  });

  it('cuts a response whose socket takes nothing for stallTimeoutMs while writes wait, and reports it once', () => {
    const response = new HeldResponse();
    const stalls: number[] = [];
    const flow = new ResponseFlow(response, { stallTimeoutMs: 1000, now: clock, onStall: () => stalls.push(now) });
    flow.write('part 1');
    now = 999;
    flow.check();
    expect(response.destroyed).toBe(false);
    now = 1000;
    flow.check();
    expect(response.destroyed).toBe(true);
    now = 5000;
    flow.check();
    expect(stalls).toEqual([1000]);
  });

  it('keeps a slow reader that makes progress, and an idle stream with nothing waiting', () => {
    const response = new HeldResponse();
    const flow = new ResponseFlow(response, { stallTimeoutMs: 1000, now: clock });
    // Nothing written: an upstream that thinks for minutes is not a stalled client.
    now = 60_000;
    flow.check();
    expect(response.destroyed).toBe(false);

    flow.write('one');
    flow.write('two');
    now = 60_900;
    response.take(); // progress: the socket took 'one'
    now = 61_800;
    flow.check();
    expect(response.destroyed).toBe(false);
    response.take();
    expect(flow.pending).toBe(0);
    now = 100_000;
    flow.check();
    expect(response.destroyed).toBe(false);
    flow.close();
  });

  it('counts the writes of a library that writes the response itself (adopt), keeping its callbacks', async () => {
    const response = new HeldResponse();
    const flow = new ResponseFlow(response, { stallTimeoutMs: 1000, now: clock });
    flow.adopt(response as unknown as Parameters<ResponseFlow['adopt']>[0]);
    const done: string[] = [];
    response.write('event: next\n\n', () => done.push('written'));
    expect(flow.pending).toBe(1);
    let flushed = false;
    void flow.flushed().then(() => {
      flushed = true;
    });
    await settle();
    expect(flushed).toBe(false);
    response.take();
    await settle();
    expect(done).toEqual(['written']);
    expect(flushed).toBe(true);
    flow.close();
  });

  it('wakes a waiting reader when the response closes, and passes return() straight to the source', async () => {
    const response = new HeldResponse();
    const flow = new ResponseFlow(response, { stallTimeoutMs: 1000, now: clock });
    const source = counted(['a', 'b']);
    const paced = flow.paced(source);
    flow.write('unread');
    const next = paced.next();
    response.destroy();
    await next;
    await paced.return!();
    expect(source.returned).toBe(true);
    // Nothing is written to a closed response.
    flow.write('late');
    expect(response.written).toEqual(['unread']);
  });
});
