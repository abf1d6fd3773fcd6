import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { QuotaLimit } from '../errors';
import { attempt, StoreBreaker, type StoreCircuit } from '../lib/store-breaker';
import type { Logger } from '../telemetry/logger';
import { LocalWindows } from './local-windows';

/**
 * How a limit's counts renew: `minute`, a fixed one-minute window from the account's first
 * count in it (rate-limiter-flexible's window); `day` and `month`, the UTC calendar day or
 * month (the window's date is part of the key); `open`, a count of things open now, given
 * back when each closes (its key expires `openTtlSec` after its first count, so a count left
 * by a replica that died does not outlive that).
 */
export type CounterWindow = 'minute' | 'day' | 'month' | 'open';

/** Where a count was taken: it is given back or corrected in the same place. */
type Backend = 'shared' | 'local';

/** Counted: where, under which key, and until when the window it was counted in lasts. */
export interface Taken {
  readonly ok: true;
  readonly backend: Backend;
  readonly key: string;
  readonly points: number;
  /** Epoch ms when the window the points were counted in ends. */
  readonly windowEndsAt: number;
}

/** Not counted: the limit would be crossed. */
export interface Refused {
  readonly ok: false;
  /** Milliseconds until the window renews. */
  readonly retryAfterMs: number;
}

/** A count's outcome: at once when counted in this process, a promise when counted in Redis. */
export type Counted = Taken | Refused | Promise<Taken | Refused>;

/** An account's figure in the current window. */
export interface CounterReading {
  used: number;
  /** Milliseconds until the window renews; undefined when nothing was counted in it. */
  resetsInMs?: number;
}

const MINUTE_SEC = 60;
const DAY_SEC = 86_400;
/** A day key lives 25 h from its first count: past its day it is never written again. */
const DAY_KEY_SEC = DAY_SEC + 3_600;
/** A month key lives 32 days from its first count. */
const MONTH_KEY_SEC = 32 * DAY_SEC;

/** Consecutive Redis failures or timeouts after which the limiters use their local share for a while. */
const SHARED_BREAKER_THRESHOLD = 3;
/** How long the local share is used before one call probes Redis again. */
const SHARED_BREAKER_COOLDOWN_MS = 1_000;

export interface CounterStoreOptions {
  /** A node-redis client (connected by the owner, `disableOfflineQueue`); undefined = local counters only. */
  redis?: unknown;
  /** Replicas sharing the Redis counters: while Redis is away each replica admits `limit / replicas`. */
  replicas: number;
  /** A Redis call not answered by then is counted locally instead. */
  timeoutMs: number;
  /** Prefix of every Redis key (`<prefix>:<limit>:<account>[:<window date>]`). */
  keyPrefix: string;
  /** Lifetime of an `open` count's key, in seconds. */
  openTtlSec: number;
  logger: Logger;
  now?: () => number;
}

/**
 * The counters of every limit: in Redis with rate-limiter-flexible (`RateLimiterRedis`, one
 * atomic Lua `INCRBY` per count, so every replica together admits exactly the limit) when
 * there is one, else in this process (`LocalWindows`: the same fixed windows as the library's
 * `RateLimiterMemory`, counted synchronously).
 *
 * When Redis fails or does not answer within `timeoutMs`, the count is taken by the local
 * limiter instead, whose limit is this replica's share (`ceil(limit / replicas)`): never
 * unlimited, never refusing everything. After `SHARED_BREAKER_THRESHOLD` failures in a row
 * the shared counters are skipped for `SHARED_BREAKER_COOLDOWN_MS` (one timeout per cool-down,
 * not one per request), then one call probes Redis, and the counters rejoin it once it answers.
 * The local share starts from zero: while Redis is away a replica may admit its share on
 * top of what the shared counter had already counted in that window.
 */
export class CounterStore {
  readonly #redis: unknown;
  readonly #breaker: StoreBreaker;
  readonly #logger: Logger;
  readonly now: () => number;
  /** Counts taken locally because Redis failed or was skipped. */
  fallbacks = 0;

  constructor(readonly options: CounterStoreOptions) {
    this.#redis = options.redis;
    this.#logger = options.logger;
    this.now = options.now ?? Date.now;
    this.#breaker = new StoreBreaker({
      threshold: SHARED_BREAKER_THRESHOLD,
      cooldownMs: SHARED_BREAKER_COOLDOWN_MS,
      timeoutMs: options.timeoutMs,
      onStateChange: (state) => this.#onStateChange(state),
    });
  }

  get shared(): boolean {
    return this.#redis !== undefined;
  }

  /** With Redis: CLOSED while counting there; OPEN / HALF_OPEN while counting locally. */
  get circuit(): StoreCircuit {
    return this.#breaker.state;
  }

  /** One counter: `limit` points per window for each account. */
  counter(name: QuotaLimit, points: number, window: CounterWindow): Counter {
    const durationSec = window === 'minute' ? MINUTE_SEC : window === 'day' ? DAY_KEY_SEC : window === 'month' ? MONTH_KEY_SEC : this.options.openTtlSec;
    const keyPrefix = `${this.options.keyPrefix}:${name}`;
    const shared =
      this.#redis === undefined
        ? undefined
        : new RateLimiterRedis({
            storeClient: this.#redis,
            useRedisPackage: true,
            // A client that is reconnecting fails at once instead of waiting for the timeout.
            rejectIfRedisNotReady: true,
            keyPrefix,
            points,
            duration: durationSec,
          });
    const localPoints = shared ? Math.max(1, Math.ceil(points / this.options.replicas)) : points;
    // Node's timers hold at most 2^31 - 1 ms (24.8 days): a month window's expiry timer would
    // fire at once. Month windows in memory never end instead, and each account's previous
    // month is deleted when it counts in a new one (see `Counter.take`).
    const local = new LocalWindows(window === 'month' ? 0 : durationSec * 1000);
    return new Counter(this, name, points, window, shared, local, localPoints);
  }

  /**
   * Runs `work` on the shared limiter through the breaker; undefined when Redis failed, timed
   * out or is skipped (the caller then uses the local limiter).
   */
  async viaShared<T>(work: () => Promise<T>): Promise<T | undefined> {
    const outcome = await attempt(this.#breaker, work, (error) => this.#logger.debug({ err: error }, 'quota counter in Redis failed; counting locally'));
    if (outcome === undefined) this.fallbacks += 1;
    return outcome;
  }

  #onStateChange(state: StoreCircuit): void {
    if (state === 'OPEN') this.#logger.warn('quota counters cannot reach Redis; each replica now admits its share of every limit (QUOTA_REPLICAS)');
    else if (state === 'CLOSED') this.#logger.info('quota counters reach Redis again; limits are shared by every replica');
  }
}

/** What a Redis count answers: refused when the limit would be crossed, and when its window renews. */
type Outcome = { refused: boolean; res: RateLimiterRes };

/**
 * A Redis count's outcome. This and `correct` / `adjust` are promise chains, not async
 * functions: a reserved upstream call counts in five windows and settles in three, and each
 * async layer allocated about 400 B (sampling heap profile).
 */
function outcomeOf(call: Promise<RateLimiterRes>): Promise<Outcome> {
  return call.then(
    (res) => ({ refused: false, res }),
    (error: unknown) => {
      // rate-limiter-flexible rejects with a RateLimiterRes when the points would cross the limit.
      if (error instanceof RateLimiterRes) return { refused: true, res: error };
      throw error;
    },
  );
}

const ignore = (): void => undefined;

/** One limit of one policy, counted per account (see `CounterStore`). */
export class Counter {
  constructor(
    private readonly store: CounterStore,
    readonly name: QuotaLimit,
    readonly limit: number,
    readonly window: CounterWindow,
    private readonly shared: RateLimiterAbstract | undefined,
    private readonly local: LocalWindows,
    /** The local windows' limit: this replica's share when the counters are shared. */
    private readonly localLimit: number,
  ) {}

  /**
   * Counts `points` for `account` unless that would cross the limit. A refused count is
   * given back when `refund` (a spend reservation or a stream slot must not block smaller
   * ones); a refused request is left counted (one round trip fewer; it is a fixed window).
   * Counted in this process, the outcome comes at once (a cache miss takes five counts);
   * in Redis, as a promise chain (see `outcomeOf`).
   */
  take(account: string, points: number, refund: boolean): Counted {
    const now = this.store.now();
    const key = this.keyOf(account, now);
    const shared = this.shared;
    if (!shared) return this.takeLocally(account, key, points, refund, now);
    return this.store
      .viaShared(() => outcomeOf(shared.consume(key, points)))
      .then((outcome) => (outcome ? this.verdict(shared, key, points, refund, now, outcome) : this.takeLocally(account, key, points, refund, now)));
  }

  private takeLocally(account: string, key: string, points: number, refund: boolean, now: number): Taken | Refused {
    const count = this.local.add(key, points);
    if (this.window === 'month' && count.first) this.local.delete(this.keyOf(account, previousMonth(now)));
    const retryAfterMs = this.renewsInMs(now, count.msBeforeNext);
    if (count.value <= this.localLimit) return { ok: true, backend: 'local', key, points, windowEndsAt: now + retryAfterMs };
    if (refund) this.local.add(key, -points);
    return { ok: false, retryAfterMs };
  }

  /** A shared count's outcome as `take` answers it: refused counts given back first when `refund`. */
  private verdict(shared: RateLimiterAbstract, key: string, points: number, refund: boolean, now: number, outcome: Outcome): Taken | Refused | Promise<Refused> {
    const retryAfterMs = this.renewsInMs(now, outcome.res.msBeforeNext);
    if (!outcome.refused) return { ok: true, backend: 'shared', key, points, windowEndsAt: now + retryAfterMs };
    const refused: Refused = { ok: false, retryAfterMs };
    return refund ? this.adjustShared(shared, key, -points).then(() => refused) : refused;
  }

  /**
   * Corrects a count: `delta` < 0 gives points back (a reservation's unused part, a stream
   * that closed), > 0 charges more (usage above the estimate). Skipped once the window the
   * count was taken in has ended: its key is gone, and writing would credit the next one.
   * A local count is corrected at once (undefined); a shared one answers a promise.
   */
  correct(taken: Taken, delta: number): Promise<void> | undefined {
    if (delta === 0 || this.store.now() >= taken.windowEndsAt) return undefined;
    return this.adjust(taken.backend, taken.key, delta);
  }

  /** The account's count in the current window. */
  async read(account: string): Promise<CounterReading> {
    const now = this.store.now();
    const key = this.keyOf(account, now);
    let reading: { used: number; msBeforeNext: number } | null | undefined;
    if (this.shared) {
      const shared = this.shared;
      const outcome = await this.store.viaShared(async () => ({ res: await shared.get(key) }));
      if (outcome) reading = outcome.res && { used: outcome.res.consumedPoints, msBeforeNext: outcome.res.msBeforeNext };
    }
    if (reading === undefined) {
      const local = this.local.get(key);
      reading = local && { used: local.value, msBeforeNext: local.msBeforeNext };
    }
    if (!reading) return { used: 0 };
    return { used: Math.max(0, reading.used), resetsInMs: this.renewsInMs(now, reading.msBeforeNext) };
  }

  /** Changes a count by `delta`: at once in this process (undefined), as a promise in Redis. */
  private adjust(backend: Backend, key: string, delta: number): Promise<void> | undefined {
    if (backend === 'shared' && this.shared) return this.adjustShared(this.shared, key, delta);
    this.local.add(key, delta);
    return undefined;
  }

  /** Changes a count in Redis. Lost if Redis is away: the shared count then errs high, until its window ends. */
  private adjustShared(shared: RateLimiterAbstract, key: string, delta: number): Promise<void> {
    return this.store.viaShared(() => (delta < 0 ? shared.reward(key, -delta) : shared.penalty(key, delta))).then(ignore);
  }

  /** The limiter key: the account, plus the calendar window's date for `day` and `month`. */
  private keyOf(account: string, now: number): string {
    if (this.window === 'day') return `${account}:${calendarOf(now).day}`;
    if (this.window === 'month') return `${account}:${calendarOf(now).month}`;
    return account;
  }

  /** Milliseconds until the window renews: the calendar's for `day` and `month`, the limiter's otherwise. */
  private renewsInMs(now: number, msBeforeNext: number): number {
    if (this.window === 'day') return calendarOf(now).dayEndsAt - now;
    if (this.window === 'month') return calendarOf(now).monthEndsAt - now;
    return Math.max(0, msBeforeNext);
  }
}

/** The UTC calendar day and month of a moment: their key labels and when each ends (epoch ms). */
interface Calendar {
  readonly dayStartsAt: number;
  readonly dayEndsAt: number;
  readonly monthEndsAt: number;
  /** `YYYY-MM-DD` */
  readonly day: string;
  /** `YYYY-MM` */
  readonly month: string;
}

let lastCalendar: Calendar | undefined;

/**
 * `now`'s calendar day and month, worked out again only when `now` is outside the day last
 * asked about. A call that reserves its spend counts in three day or month windows and
 * settles in them again, and each used to build a `Date` and an ISO string.
 */
function calendarOf(now: number): Calendar {
  const last = lastCalendar;
  if (last && now >= last.dayStartsAt && now < last.dayEndsAt) return last;
  const at = new Date(now);
  const iso = at.toISOString();
  const [year, month, day] = [at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()];
  lastCalendar = {
    dayStartsAt: Date.UTC(year, month, day),
    dayEndsAt: Date.UTC(year, month, day + 1),
    monthEndsAt: Date.UTC(year, month + 1, 1),
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
  };
  return lastCalendar;
}

/** A moment in the calendar month before the one of `now` (UTC). */
function previousMonth(now: number): number {
  const at = new Date(now);
  return Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - 1, 1);
}
