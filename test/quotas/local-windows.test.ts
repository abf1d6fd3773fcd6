import { LocalWindows } from '../../src/quotas/local-windows';

describe('LocalWindows (fixed windows in this process)', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('opens a window at the first count and adds to it until it ends', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const windows = new LocalWindows(60_000);
    expect(windows.add('a', 2)).toEqual({ value: 2, msBeforeNext: 60_000, first: true });
    jest.advanceTimersByTime(15_000);
    expect(windows.add('a', 3)).toEqual({ value: 5, msBeforeNext: 45_000, first: false });
    expect(windows.get('a')).toEqual({ value: 5, msBeforeNext: 45_000 });
    // Another key has a window of its own.
    expect(windows.add('b', 1)).toMatchObject({ value: 1, first: true });
  });

  it('starts a new window from the next count once the old one has ended', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const windows = new LocalWindows(60_000);
    windows.add('a', 7);
    // The clock passes the window's end before its deletion timer has run.
    jest.setSystemTime(1_000_000 + 60_001);
    expect(windows.add('a', 1)).toEqual({ value: 1, msBeforeNext: 60_000, first: true });
  });

  it('keeps what a count adds, and takes back what a negative one gives', () => {
    const windows = new LocalWindows(60_000);
    windows.add('a', 10);
    expect(windows.add('a', -4).value).toBe(6);
    expect(windows.get('a')?.value).toBe(6);
  });

  it('deletes a key when its window ends, so idle accounts hold nothing', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const windows = new LocalWindows(60_000);
    for (let i = 0; i < 10_000; i++) windows.add(`account-${i}`, 1);
    expect(windows.size).toBe(10_000);
    jest.advanceTimersByTime(60_000);
    expect(windows.size).toBe(0);
    expect(windows.get('account-1')).toBeUndefined();
  });

  it('does not let an ended window’s timer delete the window that replaced it', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const windows = new LocalWindows(60_000);
    windows.add('a', 1);
    jest.advanceTimersByTime(30_000);
    // The clock jumps past the window's end before its deletion timer has run (a busy loop).
    jest.setSystemTime(1_000_000 + 60_001);
    windows.add('a', 2); // a new window, from now
    expect(jest.getTimerCount()).toBe(1); // the old window's timer is gone with it
    jest.advanceTimersByTime(30_000); // the old window's timer was due by now
    expect(windows.get('a')?.value).toBe(2);
    jest.advanceTimersByTime(30_001);
    expect(windows.get('a')).toBeUndefined();
  });

  it('with a length of 0, never ends a window nor sets a timer (month windows)', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const windows = new LocalWindows(0);
    expect(windows.add('a', 5)).toEqual({ value: 5, msBeforeNext: -1, first: true });
    expect(jest.getTimerCount()).toBe(0);
    jest.setSystemTime(1_000_000 + 40 * 86_400_000);
    expect(windows.add('a', 1)).toEqual({ value: 6, msBeforeNext: -1, first: false });
    windows.delete('a');
    expect(windows.get('a')).toBeUndefined();
  });
});
