import fc from 'fast-check';

/**
 * The fuzz budget: a fixed seed, a fixed number of runs and a time cap per property, so
 * the suite is reproducible and bounded. `FUZZ_SEED` (an integer, or `random`) and
 * `FUZZ_RUNS` (runs per property) override the defaults for a longer or different search;
 * fast-check prints the seed and path of any counterexample, so a failure found with a
 * random seed can be replayed with `FUZZ_SEED=<seed>`.
 */

/** The default seed: any fixed value; changing it changes which inputs the suite tries. */
export const DEFAULT_FUZZ_SEED = 424_242;

function seedFromEnv(): number {
  const raw = process.env.FUZZ_SEED?.trim();
  if (!raw) return DEFAULT_FUZZ_SEED;
  if (raw === 'random') return Math.floor(Math.random() * 0x7fffffff);
  if (!/^-?\d+$/.test(raw)) throw new Error(`FUZZ_SEED must be an integer or "random", got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function runsFromEnv(): number | undefined {
  const raw = process.env.FUZZ_RUNS?.trim();
  if (!raw) return undefined;
  if (!/^[1-9]\d*$/.test(raw)) throw new Error(`FUZZ_RUNS must be a positive integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Read once: every property of a run uses the same seed, so one number replays them all. */
export const FUZZ_SEED = seedFromEnv();
const FUZZ_RUNS = runsFromEnv();

export interface FuzzBudget {
  numRuns: number;
  /** Wall-clock cap of the property, shrinking included; runs left at the cap are skipped. */
  timeLimitMs: number;
  /** The jest timeout of the test holding the property: the cap plus one request in flight. */
  testTimeoutMs: number;
}

/** Upper bound on one request (see `HANG_LIMIT_MS` in ./exchange.ts) plus slack for the health check. */
const TEST_TIMEOUT_SLACK_MS = 15_000;

/**
 * The budget of one property: `runs` and `timeLimitMs` by default; with `FUZZ_RUNS` set,
 * that many runs and a time cap grown in proportion, so a long search is not cut short.
 */
export function fuzzBudget(runs: number, timeLimitMs: number): FuzzBudget {
  const numRuns = FUZZ_RUNS ?? runs;
  const limit = Math.round(timeLimitMs * Math.max(1, numRuns / runs));
  return { numRuns, timeLimitMs: limit, testTimeoutMs: limit + TEST_TIMEOUT_SLACK_MS };
}

/** fast-check parameters for a one-argument property within `budget`, with the suite's seed; `examples` run first. */
export function fuzzParameters<T>(budget: FuzzBudget, examples: T[] = []): fc.Parameters<[T]> {
  return {
    seed: FUZZ_SEED,
    numRuns: budget.numRuns,
    examples: examples.map((example): [T] => [example]),
    // Stops generating (and shrinking) at the cap; what ran by then still counts.
    plugins: [fc.interruptAfterTimeLimit(budget.timeLimitMs)],
  };
}
