import { BatchWindow } from '../../src/batching/batch-window';

function recorder(windowMs: number, maxSize: number) {
  const batches: number[][] = [];
  const window = new BatchWindow<number>({ windowMs, maxSize, run: (batch) => batches.push(batch) });
  return { batches, window };
}

describe('BatchWindow', () => {
  it('with windowMs 0, gathers what is added in the same tick, including in promise jobs', async () => {
    const { batches, window } = recorder(0, 100);

    window.add(1);
    await Promise.resolve();
    window.add(2); // a promise job later, same tick
    expect(batches).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    window.add(3); // a later turn of the event loop: a new batch
    await new Promise((resolve) => setImmediate(resolve));

    expect(batches).toEqual([[1, 2], [3]]);
  });

  describe('with a window (fake timers)', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('closes windowMs after the first item', () => {
      const { batches, window } = recorder(30, 100);

      window.add(1);
      jest.advanceTimersByTime(10);
      window.add(2);
      jest.advanceTimersByTime(19);
      expect(batches).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(batches).toEqual([[1, 2]]);
      window.add(3);
      jest.advanceTimersByTime(30);

      expect(batches).toEqual([[1, 2], [3]]);
    });

    it('closes a batch at once when it reaches maxSize, and starts a new window after it', () => {
      const { batches, window } = recorder(30, 2);

      window.add(1);
      window.add(2);
      expect(batches).toEqual([[1, 2]]);
      window.add(3);
      jest.advanceTimersByTime(10);
      window.add(4);
      window.add(5);
      expect(batches).toEqual([[1, 2], [3, 4]]);
      jest.advanceTimersByTime(29);
      expect(batches).toEqual([[1, 2], [3, 4]]);
      jest.advanceTimersByTime(1);

      expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    });
  });

  it('does not let the schedule of a batch closed early cut the next one short', async () => {
    const { batches, window } = recorder(0, 2);

    window.add(1);
    window.add(2); // closes at once; its scheduled close is now stale
    window.add(3);
    await new Promise((resolve) => setImmediate(resolve));

    expect(batches).toEqual([[1, 2], [3]]);
  });
});
