import type { PriceTable } from '../config';
import { estimateCostUsd, type TokenUsage } from './cost';

/** What one GraphQL request cost; sent to the client as `extensions.cost`. */
export interface RequestCost {
  /** Upstream completion calls this request started (joined calls are not counted here). */
  upstreamCalls: number;
  /** Loads answered from the cache. */
  cacheHits: number;
  /** Loads that joined an identical upstream call already running (for any request). */
  joinedInFlight: number;
  /** Loads answered by an identical call another replica made (through Redis; free here). */
  joinedRemote: number;
  /** Wall time during which at least one of this request's loads waited on DeepSeek. */
  upstreamMs: number;
  /** `totalMs - upstreamMs`: parsing, validation, cache, batching, serialisation. */
  overheadMs: number;
  /** From the context factory to the response being handed over for writing. */
  totalMs: number;
  /** Estimated USD of the upstream calls this request started (list prices; 0 when none). */
  estimatedCostUsd: number;
}

/** Ends one wait on an upstream call; idempotent. */
export type EndWait = () => void;

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * The cost ledger of ONE GraphQL operation, made when the operation starts
 * (`OperationObserver.start`). The coalescer records into the ledger of every waiting load
 * (a cache hit, a joined call, a fresh call and its usage); the operation's end reads it.
 * `now` is the clock (injectable for tests).
 */
export class RequestLedger {
  private upstreamCalls = 0;
  private cacheHits = 0;
  private joinedInFlight = 0;
  private joinedRemote = 0;
  private costUsd = 0;
  private readonly startedAt: number;
  private finished: RequestCost | undefined;
  /** Waits open now; time is added to `waitedMs` only while at least one is open. */
  private openWaits = 0;
  private waitStartedAt = 0;
  private waitedMs = 0;

  constructor(
    private readonly prices?: PriceTable,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  recordCacheHits(count = 1): void {
    this.cacheHits += count;
  }

  /** A load of this request joined a running call; call the result when it has its answer. */
  recordJoined(): EndWait {
    this.joinedInFlight += 1;
    return this.beginWait();
  }

  /** A load of this request started an upstream call; call the result when it has its answer. */
  recordUpstreamCall(): EndWait {
    this.upstreamCalls += 1;
    return this.beginWait();
  }

  /** A call this request was to start was answered by another replica's call instead: a remote join. */
  recordRemoteJoin(): void {
    this.upstreamCalls = Math.max(0, this.upstreamCalls - 1);
    this.joinedRemote += 1;
  }

  /** A call this request was to start was refused by its quota before anything was sent: not a call. */
  recordRefusedCall(): void {
    this.upstreamCalls = Math.max(0, this.upstreamCalls - 1);
  }

  /** Usage of a call this request started, for the estimated cost. */
  recordUsage(model: string, usage: TokenUsage, at: Date = new Date()): void {
    if (!this.prices) return;
    this.costUsd += estimateCostUsd(this.prices, model, usage, at)?.usd ?? 0;
  }

  /** The figures, frozen at the first call (every plugin then reports the same numbers). */
  finish(): RequestCost {
    if (this.finished) return this.finished;
    const now = this.now();
    const totalMs = now - this.startedAt;
    // A wait still open (a load abandoned by a client that went away) counts until now.
    const upstreamMs = Math.min(totalMs, this.waitedMs + (this.openWaits > 0 ? now - this.waitStartedAt : 0));
    this.finished = {
      upstreamCalls: this.upstreamCalls,
      cacheHits: this.cacheHits,
      joinedInFlight: this.joinedInFlight,
      joinedRemote: this.joinedRemote,
      upstreamMs: round(upstreamMs),
      overheadMs: round(totalMs - upstreamMs),
      totalMs: round(totalMs),
      estimatedCostUsd: Number(this.costUsd.toPrecision(6)),
    };
    return this.finished;
  }

  private beginWait(): EndWait {
    if (this.openWaits === 0) this.waitStartedAt = this.now();
    this.openWaits += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.openWaits -= 1;
      if (this.openWaits === 0) this.waitedMs += this.now() - this.waitStartedAt;
    };
  }
}
