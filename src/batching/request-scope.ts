import type { Context } from '@opentelemetry/api';
import type { OwnerClaim } from '../cluster/leases';
import type { CompletionRequest, CompletionResult } from '../deepseek/types';
import type { EndWait, RequestLedger } from '../telemetry/ledger';
import type { CachePolicy, CompletionView, JoinedCompletion, QuotaPayer } from './types';
import type { AbortSignalLike, LightAbortController } from '../lib/abort';

/** What an operation hands the coalescer with its loads. */
export interface OperationScope {
  /** Aborted when the operation's client goes away. */
  readonly signal?: AbortSignalLike;
  /** Where the operation's cost is recorded. */
  readonly ledger?: RequestLedger;
  /** The operation span's context: parent of the upstream calls its loads start. */
  readonly traceContext?: Context;
  /**
   * Whose stored answers and in-flight calls the operation may share (the caller's tenant
   * with CACHE_SCOPE=tenant); undefined = the global scope.
   */
  readonly cacheScope?: string;
  /**
   * Who pays for the upstream calls this operation starts (its caller's quota account):
   * each call's worst case is reserved before it is made. Undefined = not limited.
   */
  readonly quota?: QuotaPayer;
}

/** One upstream call, shared by every waiter for the same completion (and scope) in this process. */
export interface Flight {
  /** The store key (`cacheKey`): the completion id in its cache scope. */
  readonly key: string;
  readonly controller: LightAbortController;
  readonly call: Promise<CompletionResult>;
  /** Settles as soon as the call does: each waiter is answered as its own call ends. */
  readonly done: Promise<CompletionResult>;
  /** Waiters that may still read the answer; the call is aborted when this drops to 0. */
  waiters: number;
  /** Whether any waiter's policy keeps the answer (USE or REFRESH; BYPASS does not). */
  store: boolean;
  /** The call has ended and its waiters have their outcome. */
  answered: boolean;
  /** The quota account that pays for the call (its starter's); undefined when not limited. */
  readonly payer: string | undefined;
  /**
   * Across replicas (src/cluster): `remote` once the answer came from another replica's
   * call (none was made here); `lease` while this replica holds the call's lease, finished
   * (the answer published, the lease released) once the answer is stored or the call failed.
   */
  readonly cluster: { remote: boolean; lease?: OwnerClaim };
}

/** One load waiting for its answer: a slot of some per-request loader's batch. */
export interface Waiter {
  readonly id: string;
  /** The store key (`cacheKey`): in-flight calls and the cache are keyed by it. */
  readonly key: string;
  readonly request: CompletionRequest;
  readonly policy: CachePolicy;
  readonly scope: RequestScope;
  /** Set once the slot has its answer, error or abort; later outcomes are ignored. */
  settled: boolean;
  flight: Flight | undefined;
  /** The running stream this load waits on instead of a call of its own (see `JoinRunning`). */
  joined: JoinedCompletion | undefined;
  /** Ends this load's wait on an upstream call in its ledger. */
  endWait: EndWait | undefined;
  /** Times this load joined a call that another caller's quota then refused (see `Flights`). */
  requeued: number;
  resolve(view: CompletionView): void;
  reject(error: Error): void;
}

/**
 * The waiting loads of ONE operation. A single abort listener serves them all (Node warns
 * beyond 10 listeners on one signal, and a list field can hold hundreds of loads); it is
 * attached while at least one load waits and removed when none does, so even a
 * long-lived signal gathers no listeners.
 */
export class RequestScope {
  private readonly waiting = new Set<Waiter>();
  private readonly onAbort = (): void => {
    for (const waiter of [...this.waiting]) this.abandon(waiter);
  };

  constructor(
    readonly operation: OperationScope,
    private readonly enqueue: (request: CompletionRequest, policy: CachePolicy, scope: RequestScope) => Promise<CompletionView>,
    private readonly abandon: (waiter: Waiter) => void,
  ) {}

  get signal(): AbortSignalLike | undefined {
    return this.operation.signal;
  }

  get ledger(): RequestLedger | undefined {
    return this.operation.ledger;
  }

  get traceContext(): Context | undefined {
    return this.operation.traceContext;
  }

  load(request: CompletionRequest, policy: CachePolicy): Promise<CompletionView> {
    return this.enqueue(request, policy, this);
  }

  /** A load of this operation is waiting: listen for the operation's abort. */
  hold(waiter: Waiter): void {
    if (!this.signal) return;
    if (this.waiting.size === 0) this.signal.addEventListener('abort', this.onAbort, { once: true });
    this.waiting.add(waiter);
  }

  /** A load has its outcome; the last one out removes the abort listener. */
  release(waiter: Waiter): void {
    if (this.waiting.delete(waiter) && this.waiting.size === 0) {
      this.signal?.removeEventListener('abort', this.onAbort);
    }
  }
}
