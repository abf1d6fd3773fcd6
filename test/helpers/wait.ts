/** How long `waitFor` polls by default: half of jest's 20 s test timeout, so a condition
 * that never holds fails here, naming what was awaited, rather than as a bare timeout. */
export const WAIT_TIMEOUT_MS = 10_000;

export interface WaitOptions {
  /** Give up after this long (default `WAIT_TIMEOUT_MS`). */
  timeoutMs?: number;
  /** Pause between two checks (default 10 ms). */
  intervalMs?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

/**
 * Checks `condition` until it holds, pausing `intervalMs` between checks; rejects once
 * `timeoutMs` has passed. Tests wait on a condition (a counter, a state) with this instead
 * of sleeping a fixed time: it returns as soon as the condition holds, and its deadline is
 * generous enough that a loaded machine never reaches it, so it fails only when the
 * condition never comes. A condition may be async (it may make a request); a check that
 * throws fails the wait at once. It runs on real timers: under jest fake timers, advance
 * the clock instead.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const { timeoutMs = WAIT_TIMEOUT_MS, intervalMs = 10, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
