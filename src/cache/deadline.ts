/** What `withDeadline` resolves with when the work did not finish in time. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Settles with `work`, or with `TIMED_OUT` after `ms`. The work itself keeps running (a
 * store command cannot be taken back); its late rejection is swallowed so it never becomes
 * an unhandled rejection. The timer is always cleared, so no handle outlives the call.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
