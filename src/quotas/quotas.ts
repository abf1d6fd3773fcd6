import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Meter } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import type { Caller } from '../auth';
import type { PriceTable } from '../config';
import type { CompletionRequest, CompletionResult } from '../deepseek/types';
import { QuotaExceededError, type QuotaLimit } from '../errors';
import { quotaMetrics, type QuotaMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { CounterStore, type Counter, type CounterReading, type Refused, type Taken } from './counters';
import { actualCost, partialCost, worstCase, type WorstCase } from './estimate';
import { policyFor, type QuotaPolicies, type QuotaPolicy } from './policy';

/** The counters of one policy: one per limit it sets. */
interface PolicyCounters {
  readonly policy: QuotaPolicy;
  readonly requests?: Counter;
  readonly upstreamCalls?: Counter;
  readonly tokens?: Counter;
  readonly usdPerDay?: Counter;
  readonly usdPerMonth?: Counter;
  readonly streams?: Counter;
}

/** One limit as the `usage` query reports it. */
export interface LimitReading {
  limit: QuotaLimit;
  /** The policy's limit (USD for the USD budgets). */
  max: number;
  /** Counted in the current window (USD for the USD budgets; reservations of calls running included). */
  used: number;
  remaining: number;
  /** Milliseconds until the window renews; undefined when nothing was counted in it (or for streams). */
  resetsInMs?: number;
}

/** An account's figures: whose they are, and each limit its policy sets. */
export interface UsageReport {
  tenant: string;
  /** The subject the figures are for; undefined when the policy counts per tenant. */
  subject?: string;
  per: 'subject' | 'tenant' | undefined;
  /** False when no policy applies (nothing is limited or counted). */
  limited: boolean;
  limits: LimitReading[];
  /** False while the counters cannot reach Redis and this replica counts its share locally. */
  shared: boolean;
}

export interface QuotasOptions {
  policies: QuotaPolicies;
  store: CounterStore;
  prices: PriceTable;
  /** The output reserved for a call without `maxTokens` (QUOTA_DEFAULT_MAX_OUTPUT_TOKENS). */
  defaultMaxOutputTokens: number;
  meter: Meter;
  logger: Logger;
}

/** What an account tells its operation when a quota refuses it (for the operation's log line). */
export type OnRefusal = (limit: QuotaLimit) => void;

const MICRO = 1_000_000;
/** What a refused stream is told to wait: a slot frees when any of the account's streams ends. */
const STREAM_RETRY_AFTER_MS = 1_000;

/**
 * Per-caller quotas and spend budgets (QUOTAS_FILE): a policy per tenant (else the default),
 * applied per subject or per tenant, counted by `CounterStore` (in Redis for every replica,
 * else in this process). One instance per process; each operation gets its `QuotaAccount`.
 */
export class Quotas {
  readonly #options: QuotasOptions;
  readonly #counters = new Map<QuotaPolicy, PolicyCounters>();
  readonly #metrics: QuotaMetrics;
  /** Operations, calls and streams refused since start, by limit. */
  readonly refusals: Partial<Record<QuotaLimit, number>> = {};

  constructor(options: QuotasOptions) {
    this.#options = options;
    this.#metrics = quotaMetrics(options.meter);
    const { policies } = options;
    for (const policy of [policies.default, ...Object.values(policies.tenants)]) {
      if (policy && !this.#counters.has(policy)) this.#counters.set(policy, this.#build(policy));
    }
  }

  get store(): CounterStore {
    return this.#options.store;
  }

  /**
   * The quota account of `caller`'s operation; undefined when no policy applies to its
   * tenant. `onRefusal` hears of every limit that refuses the operation's work.
   */
  account(caller: Caller, onRefusal?: OnRefusal): QuotaAccount | undefined {
    return this.accountOf(caller.tenant, caller.kind === 'token' ? caller.subject : addressSubject(caller.subject), onRefusal);
  }

  /** The account of `subject` of `tenant` (the `usage` query's administrator form). */
  accountOf(tenant: string, subject: string | undefined, onRefusal?: OnRefusal): QuotaAccount | undefined {
    const policy = policyFor(this.#options.policies, tenant);
    if (!policy) return undefined;
    const counters = this.#counters.get(policy)!;
    const perTenant = policy.per === 'tenant';
    const key = accountKey(perTenant ? `t\u0000${tenant}` : `s\u0000${tenant}\u0000${subject ?? ''}`);
    return new QuotaAccount(this, this.#options, counters, tenant, perTenant ? undefined : subject, key, onRefusal);
  }

  /** Counts a refusal in the metrics and the figures. */
  refused(limit: QuotaLimit, tenant: string): void {
    this.refusals[limit] = (this.refusals[limit] ?? 0) + 1;
    this.#metrics.refused(limit, tenant);
  }

  #build(policy: QuotaPolicy): PolicyCounters {
    const { store } = this.#options;
    return {
      policy,
      requests: policy.requestsPerMinute ? store.counter('requestsPerMinute', policy.requestsPerMinute, 'minute') : undefined,
      upstreamCalls: policy.upstreamCallsPerMinute ? store.counter('upstreamCallsPerMinute', policy.upstreamCallsPerMinute, 'minute') : undefined,
      tokens: policy.tokensPerDay ? store.counter('tokensPerDay', policy.tokensPerDay, 'day') : undefined,
      usdPerDay: policy.usdPerDay ? store.counter('usdPerDay', Math.floor(policy.usdPerDay * MICRO), 'day') : undefined,
      usdPerMonth: policy.usdPerMonth ? store.counter('usdPerMonth', Math.floor(policy.usdPerMonth * MICRO), 'month') : undefined,
      streams: policy.maxConcurrentStreams ? store.counter('maxConcurrentStreams', policy.maxConcurrentStreams, 'open') : undefined,
    };
  }
}

const ADMITTED: Promise<void> = Promise.resolve();
const NOTHING_RESERVED: Promise<undefined> = Promise.resolve(undefined);

/**
 * The limits of ONE operation's caller (or of its tenant, for a `per: tenant` policy):
 * admits the operation, reserves each upstream call's worst case before it is made, and
 * takes a slot per open stream. Every refusal is a `QuotaExceededError` naming its limit.
 */
export class QuotaAccount {
  constructor(
    private readonly quotas: Quotas,
    private readonly options: QuotasOptions,
    private readonly counters: PolicyCounters,
    readonly tenant: string,
    readonly subject: string | undefined,
    /** The counters' key: a hash of the tenant (and subject), never the subject itself. */
    readonly key: string,
    private readonly onRefusal?: OnRefusal,
  ) {}

  /** Whether any limit on upstream work is set (else `reserve` answers undefined at once). */
  get limitsCalls(): boolean {
    const c = this.counters;
    return c.upstreamCalls !== undefined || c.tokens !== undefined || c.usdPerDay !== undefined || c.usdPerMonth !== undefined;
  }

  /** Whose counters these are: each subject's, or the tenant's. */
  get per(): 'subject' | 'tenant' {
    return this.counters.policy.per;
  }

  /** Whether the policy caps open streams (else `openStream` answers undefined). */
  get limitsStreams(): boolean {
    return this.counters.streams !== undefined;
  }

  /** One GraphQL operation starts: counts it against `requestsPerMinute`. */
  admitOperation(): Promise<void> {
    const counter = this.counters.requests;
    if (!counter) return ADMITTED;
    const counted = counter.take(this.key, 1, false);
    if (counted instanceof Promise) {
      return counted.then((taken) => {
        if (!taken.ok) throw this.operationRefusal(counter, taken.retryAfterMs);
      });
    }
    // Counted in this process: no promise of its own but the one the caller awaits.
    return counted.ok ? ADMITTED : Promise.reject(this.operationRefusal(counter, counted.retryAfterMs));
  }

  /**
   * An upstream call (or stream) of `request` is about to start, paid for by this account:
   * counts it against `upstreamCallsPerMinute` and reserves its worst case (see `worstCase`)
   * against `tokensPerDay`, `usdPerDay` and `usdPerMonth`, all at once. If any would be
   * crossed, nothing stays counted and the call is refused before it is made. The
   * reservation is settled with the call's real usage, or released if it fails.
   * A promise chain, as the counts are (one of these runs before every upstream call).
   */
  reserve(request: CompletionRequest): Promise<Reservation | undefined> {
    if (!this.limitsCalls) return NOTHING_RESERVED;
    const { prices, defaultMaxOutputTokens } = this.options;
    const at = new Date(this.quotas.store.now());
    const worst = worstCase(request, prices, defaultMaxOutputTokens, at);
    const c = this.counters;
    const parts: Array<{ counter: Counter; points: number }> = [];
    if (c.upstreamCalls) parts.push({ counter: c.upstreamCalls, points: 1 });
    if (c.tokens) parts.push({ counter: c.tokens, points: worst.tokens });
    if (c.usdPerDay) parts.push({ counter: c.usdPerDay, points: worst.microUsd });
    if (c.usdPerMonth) parts.push({ counter: c.usdPerMonth, points: worst.microUsd });
    const counted = parts.map(({ counter, points }) => counter.take(this.key, points, true));
    const decide = (outcomes: ReadonlyArray<Taken | Refused>): Reservation | Promise<never> => {
      let refusedBy: { counter: Counter; retryAfterMs: number } | undefined;
      outcomes.forEach((outcome, index) => {
        if (outcome.ok) return;
        if (!refusedBy || outcome.retryAfterMs > refusedBy.retryAfterMs) refusedBy = { counter: parts[index].counter, retryAfterMs: outcome.retryAfterMs };
      });
      if (!refusedBy) return new Reservation(this.options, request, worst, at, parts.map(({ counter }, index) => ({ counter, taken: outcomes[index] as Taken })));
      // Give back what was counted: no call is made.
      const by = refusedBy;
      return Promise.all(outcomes.map((outcome, index) => (outcome.ok ? parts[index].counter.correct(outcome, -outcome.points) : undefined))).then(() => {
        throw this.refuse(by.counter, by.retryAfterMs, this.refusalMessage(by.counter, worst, request, by.retryAfterMs));
      });
    };
    // Counted in this process, every outcome is in already: one promise, the one returned.
    if (counted.some((outcome) => outcome instanceof Promise)) return Promise.all(counted).then(decide);
    return Promise.resolve(decide(counted as Array<Taken | Refused>));
  }

  /** A subscription opens: takes one of `maxConcurrentStreams`; `close` gives it back (idempotent). */
  async openStream(): Promise<{ close(): void } | undefined> {
    const counter = this.counters.streams;
    if (!counter) return undefined;
    const taken = await counter.take(this.key, 1, true);
    if (!taken.ok) {
      throw this.refuse(
        counter,
        STREAM_RETRY_AFTER_MS,
        `${this.whose()} may have ${counter.limit} streams open at once (maxConcurrentStreams); close one or retry shortly.`,
      );
    }
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        void counter.correct(taken, -1)?.catch(() => undefined);
      },
    };
  }

  /** The account's figures in the current windows, for each limit its policy sets. */
  async usage(): Promise<UsageReport> {
    const c = this.counters;
    const entries: Array<[Counter | undefined, number]> = [
      [c.requests, 1],
      [c.upstreamCalls, 1],
      [c.tokens, 1],
      [c.usdPerDay, MICRO],
      [c.usdPerMonth, MICRO],
      [c.streams, 1],
    ];
    const set = entries.filter((entry): entry is [Counter, number] => entry[0] !== undefined);
    const readings = await Promise.all(set.map(([counter]) => counter.read(this.key)));
    return {
      tenant: this.tenant,
      subject: this.subject,
      per: c.policy.per,
      limited: true,
      shared: this.quotas.store.shared && this.quotas.store.circuit === 'CLOSED',
      limits: set.map(([counter, unit], index) => reading(counter, unit, readings[index])),
    };
  }

  private operationRefusal(counter: Counter, retryAfterMs: number): QuotaExceededError {
    return this.refuse(counter, retryAfterMs, `${this.whose()} may start ${counter.limit} operations per minute (requestsPerMinute); retry in ${seconds(retryAfterMs)}.`);
  }

  private refuse(counter: Counter, retryAfterMs: number, message: string): QuotaExceededError {
    this.quotas.refused(counter.name, this.tenant);
    this.onRefusal?.(counter.name);
    return new QuotaExceededError(counter.name, message, retryAfterMs, this.key);
  }

  private refusalMessage(counter: Counter, worst: WorstCase, request: CompletionRequest, retryAfterMs: number): string {
    const renews = `it renews in ${seconds(retryAfterMs)}`;
    if (counter.name === 'upstreamCallsPerMinute') {
      return `${this.whose()} may start ${counter.limit} DeepSeek calls per minute (upstreamCallsPerMinute; cached answers are free); ${renews}.`;
    }
    const cap = request.maxTokens === undefined ? `the default output cap of ${this.options.defaultMaxOutputTokens} tokens` : `maxTokens ${request.maxTokens}`;
    const what =
      counter.name === 'tokensPerDay'
        ? `${worst.tokens} tokens (its prompt plus ${cap}) would cross the tokensPerDay budget of ${counter.limit}`
        : `an estimated $${(worst.microUsd / MICRO).toFixed(6)} (its prompt plus ${cap}) would cross the ${counter.name} budget of $${counter.limit / MICRO}`;
    return `This call's worst case of ${what} for ${this.whose()}; ${renews}. A smaller maxTokens reserves less.`;
  }

  private whose(): string {
    return this.subject === undefined ? `tenant ${this.tenant}` : `this caller (tenant ${this.tenant})`;
  }
}

/**
 * One upstream call's reservation: settled with the real usage once the call finishes
 * (the difference is given back, or charged when the usage exceeds the estimate), or
 * released when it fails (the output already streamed stays charged). Each runs once;
 * corrections are sent without waiting, so no answer waits on a counter.
 */
export class Reservation {
  #done = false;

  constructor(
    private readonly options: QuotasOptions,
    private readonly request: CompletionRequest,
    private readonly reserved: WorstCase,
    /** When the call was reserved: its cost is priced at that period's rates, reserved and settled alike. */
    private readonly at: Date,
    private readonly parts: ReadonlyArray<{ counter: Counter; taken: Taken }>,
  ) {}

  /** The call finished: charge what it really cost. */
  settle(result: Pick<CompletionResult, 'model' | 'usage'>): void {
    this.#correct(actualCost(this.options.prices, result.model, result.usage, this.at));
  }

  /** The call failed or was cut, after `outputBytes` of output (0: nothing was generated that we saw). */
  release(outputBytes = 0): void {
    this.#correct(outputBytes > 0 ? partialCost(this.request, outputBytes, this.options.prices, this.at) : { tokens: 0, microUsd: 0 });
  }

  #correct(actual: WorstCase): void {
    if (this.#done) return;
    this.#done = true;
    for (const { counter, taken } of this.parts) {
      const delta =
        counter.name === 'tokensPerDay' ? actual.tokens - this.reserved.tokens : counter.name === 'upstreamCallsPerMinute' ? 0 : actual.microUsd - this.reserved.microUsd;
      void counter.correct(taken, delta)?.catch(() => undefined);
    }
  }
}

function reading(counter: Counter, unit: number, counted: CounterReading): LimitReading {
  const max = counter.limit / unit;
  const used = Math.min(counted.used, Number.MAX_SAFE_INTEGER) / unit;
  return {
    limit: counter.name,
    max,
    used,
    remaining: Math.max(0, max - used),
    resetsInMs: counter.window === 'open' ? undefined : counted.resetsInMs,
  };
}

function seconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))} s`;
}

/** A short, fixed-length, non-reversible counter key (subjects and addresses never reach Redis). */
function accountKey(identity: string): string {
  let key = accountKeys.get(identity);
  if (key === undefined) {
    key = createHash('sha256').update(identity).digest('base64url').slice(0, 22);
    // A small memo of recent accounts: a busy caller's key is hashed once, not per request.
    accountKeys.set(identity, key);
  }
  return key;
}

/**
 * Accounts whose counter key is remembered, the least recently used forgotten first (an LRU:
 * a Map emptied from its oldest key walks over every slot deleted before it, see `recent` in
 * src/cache/key.ts).
 */
const ACCOUNT_KEY_MEMO = 4096;
const accountKeys = new LRUCache<string, string>({ max: ACCOUNT_KEY_MEMO });

/**
 * The subject of a caller known only by its address: an IPv6 address counts by its /64
 * (one host is usually given a whole /64, and could otherwise mint a fresh subject per
 * request); IPv4 and IPv4-mapped addresses count as themselves.
 */
export function addressSubject(address: string): string {
  if (address.startsWith('::ffff:') && !isIPv6(address.slice(7))) return address.slice(7);
  if (!isIPv6(address)) return address;
  const zoneless = address.split('%')[0];
  const [head, tail = ''] = zoneless.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = zoneless.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = zoneless.includes('::') ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
