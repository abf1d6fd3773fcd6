import { SpanStatusCode, context, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { Config } from '../config';
import type { CompletionCache } from '../cache/completion-cache';
import { cacheKey, completionId } from '../cache/key';
import { isStorable } from '../deepseek/provider';
import type { CompletionRequest, CompletionResult, DeepSeekApi } from '../deepseek/types';
import { abortReason, toError } from '../lib/abort';
import { contextWithSpan, noopInstruments, type Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { coalescerMetrics, type CoalescerMetrics } from '../telemetry/metrics';
import type { ClusterLeases } from '../cluster/leases';
import { BatchWindow } from './batch-window';
import { batchParent, callParent, linksToOthers } from './batch-trace';
import { Flights } from './flights';
import { RequestScope, type Flight, type OperationScope, type Waiter } from './request-scope';
import { completionView, type CachePolicy, type CoalescingStats, type CompletionView, type JoinedCompletion, type JoinRunning } from './types';

/**
 * The process-wide coalescer, SHARED by every request (one instance per process, owned by
 * `CompletionService`). It keeps no memo of answers, only:
 * - a batch window (`BatchWindow`) that gathers loads from concurrent requests, so their
 *   cache lookups cost one `getMany` and their writes one `setMany` per batch;
 * - `inFlight`, the upstream calls running now, keyed by completion id (singleflight): an
 *   identical load anywhere in the process joins the running call instead of making
 *   another. An entry is deleted when its call settles (or when every waiter has gone), so
 *   nothing here outlives the call and a later load sees the cache's current answer.
 *
 * Streams share upstream work with queries both ways (see `Flights`): a load whose key has
 * a stream running waits for that stream's answer (`joinStream`, injected), and the stream
 * hub joins a query's running call through `joinCall`.
 */
export class Coalescer {
  private readonly flights: Flights;
  private readonly window: BatchWindow<Waiter>;
  private readonly cache: CompletionCache;
  private readonly logger: Logger;
  private readonly metrics: CoalescerMetrics;
  private readonly tracer: Tracer;
  private readonly cluster: ClusterLeases | undefined;
  private joinedInFlight = 0;
  private batches = 0;
  private batchedLoads = 0;
  private cacheHits = 0;
  private cacheMisses = 0;

  constructor(options: {
    cache: CompletionCache;
    upstream: Pick<DeepSeekApi, 'complete'>;
    logger: Logger;
    batching: Config['batching'];
    instruments?: Instruments;
    /** The stream running for a store key, for a load to wait on instead of calling (see `JoinRunning`). */
    joinStream?: JoinRunning;
    /** Leases shared with the other replicas through Redis (src/cluster); without it, coalescing stops at this process. */
    cluster?: ClusterLeases;
  }) {
    const instruments = options.instruments ?? noopInstruments();
    this.metrics = coalescerMetrics(instruments.meter);
    this.tracer = instruments.tracer;
    this.cache = options.cache;
    this.cluster = options.cluster;
    this.flights = new Flights(options.upstream, options.joinStream, (waiter) => this.window.add(waiter), options.cluster);
    this.logger = options.logger;
    this.window = new BatchWindow<Waiter>({
      windowMs: options.batching.windowMs,
      maxSize: options.batching.maxSize,
      run: (batch) => void this.runBatch(batch),
    });
  }

  /**
   * The entry point for one operation's loads. When the operation's signal aborts, its
   * waiting loads reject with the abort reason at once, and a shared upstream call is
   * aborted only when no waiter of any operation is left on it.
   */
  scope(operation: OperationScope = {}): RequestScope {
    return new RequestScope(
      operation,
      (request, policy, scope) => this.enqueue(request, policy, scope),
      (waiter) => this.flights.abandon(waiter),
    );
  }

  private enqueue(request: CompletionRequest, policy: CachePolicy, scope: RequestScope): Promise<CompletionView> {
    const id = completionId(request);
    const key = cacheKey(id, scope.operation.cacheScope);
    return new Promise<CompletionView>((resolve, reject) => {
      if (scope.signal?.aborted) {
        reject(abortReason(scope.signal));
        return;
      }
      const done = (): boolean => {
        if (waiter.settled) return false;
        waiter.settled = true;
        waiter.endWait?.();
        scope.release(waiter);
        return true;
      };
      const waiter: Waiter = {
        id,
        key,
        request,
        policy,
        scope,
        settled: false,
        flight: undefined,
        joined: undefined,
        endWait: undefined,
        requeued: 0,
        resolve: (view) => done() && resolve(view),
        reject: (error) => done() && reject(error),
      };
      scope.hold(waiter);
      this.window.add(waiter);
    });
  }

  /** Cache-only lookup by store key (entity resolution): one `getMany`, never an upstream call. */
  async lookup(ids: readonly string[]): Promise<Map<string, CompletionResult>> {
    if (ids.length === 0) return new Map();
    const found = await this.read(ids);
    this.cacheHits += found.size;
    this.cacheMisses += ids.length - found.size;
    return found;
  }

  /**
   * For the stream hub: joins the query call running for store key `key`, if any, as one
   * more waiter (see `JoinRunning`); the call is aborted only when its last waiter leaves.
   */
  joinCall(key: string, options: { store: boolean }): JoinedCompletion | undefined {
    return this.flights.hold(key, options);
  }

  stats(): CoalescingStats {
    return {
      upstreamCalls: this.flights.started,
      joinedInFlight: this.joinedInFlight,
      joinedStreams: this.flights.joinedStreams,
      batches: this.batches,
      meanBatchSize: this.batches === 0 ? 0 : this.batchedLoads / this.batches,
      inFlight: this.flights.size,
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      cluster: this.cluster?.stats(),
    };
  }

  /**
   * One batch: join running calls; one cache read for the USE loads left; start one
   * upstream call per remaining distinct id (concurrently: DeepSeek has no batch endpoint);
   * one cache write for this batch's storable answers. Each waiter is answered as soon
   * as its own call ends (a quick answer never waits for a slow one in the same batch),
   * while the in-flight entries stay until the batch's write is done, so a load arriving
   * meanwhile either joins the call (and gets its answer at once) or finds it stored.
   */
  private async runBatch(batch: Waiter[]): Promise<void> {
    this.batches += 1;
    this.batchedLoads += batch.length;
    this.metrics.batch(batch.length);
    // The batch belongs to the trace of its first load; the other operations are linked.
    const parent = batchParent(batch, context.active());
    const span = this.tracer.startSpan('coalescer batch', {}, parent);
    // Attributes and links only for a span that records (traces are off by default).
    const recording = span.isRecording();
    if (recording) {
      span.setAttribute('coalescer.batch_size', batch.length);
      span.addLinks(linksToOthers(batch, parent));
    }
    const batchContext = contextWithSpan(parent, span);
    const started: Flight[] = [];
    let hits = 0;
    let joined = 0;
    try {
      const toRead: Waiter[] = [];
      const toCall: Waiter[] = [];
      for (const waiter of batch) {
        if (waiter.settled) continue;
        if (this.flights.joinRunning(waiter)) {
          // Every policy may join a running call or stream: its answer is fresh, so even
          // REFRESH and BYPASS get what they asked for. Only USE ever reads the cache.
          joined += 1;
        } else if (waiter.policy === 'USE') {
          toRead.push(waiter);
        } else {
          toCall.push(waiter);
        }
      }

      if (toRead.length > 0) {
        const keys = [...new Set(toRead.map((waiter) => waiter.key))];
        // The cache spans nest under the batch (when a context manager is registered).
        const found = await context.with(batchContext, () => this.read(keys));
        for (const waiter of toRead) {
          if (waiter.settled) continue;
          const hit = found.get(waiter.key);
          if (hit) {
            hits += 1;
            waiter.scope.ledger?.recordCacheHits();
            waiter.resolve(completionView(hit, waiter.id, true));
          } else {
            this.cacheMisses += 1;
            toCall.push(waiter);
          }
        }
        this.cacheHits += hits;
      }

      for (const waiter of toCall) {
        if (waiter.settled) continue; // gone while the cache was read
        // Checked again after the read: another batch (or a stream) may have started meanwhile.
        if (this.flights.joinRunning(waiter)) {
          joined += 1;
        } else {
          waiter.endWait = waiter.scope.ledger?.recordUpstreamCall();
          const flight = this.flights.start(waiter, callParent(waiter, span, batchContext));
          started.push(flight);
          this.flights.join(flight, waiter);
        }
      }
      this.joinedInFlight += joined;
      if (recording) {
        span.setAttributes({
          'coalescer.cache_hits': hits,
          'coalescer.joined_in_flight': joined,
          'coalescer.upstream_calls': started.length,
        });
      }
      if (started.length === 0) {
        span.end();
        return;
      }
    } catch (error) {
      this.failBatch(error, batch, started, span);
      span.end();
      return;
    }
    // Returned, not awaited: this frame is not held while the upstream calls run.
    return this.storeBatch(started, batchContext, span).then(
      () => span.end(),
      (error: unknown) => {
        this.failBatch(error, batch, started, span);
        span.end();
      },
    );
  }

  /** Once the batch's calls have settled: one cache write of the storable answers, then the calls are forgotten and their leases finished. */
  private storeBatch(started: Flight[], batchContext: Context, span: Span): Promise<void> {
    return Promise.allSettled(started.map((flight) => flight.call)).then((outcomes) => {
      const entries: Array<{ id: string; value: CompletionResult }> = [];
      started.forEach((flight, index) => {
        const outcome = outcomes[index];
        if (flight.store && outcome.status === 'fulfilled' && isStorable(outcome.value)) {
          entries.push({ id: flight.key, value: outcome.value });
        }
      });
      const finish = (): void => {
        for (const flight of started) this.flights.forget(flight);
        // Stored: now the other replicas waiting on these calls get their answers, and the
        // leases go (a replica missing the cache from now on finds the answer stored).
        started.forEach((flight, index) => {
          const outcome = outcomes[index];
          flight.cluster.lease?.finish(outcome.status === 'fulfilled' ? { result: outcome.value } : { error: true });
        });
        span.setAttribute('coalescer.stored', entries.length);
      };
      if (entries.length === 0) return finish();
      return context.with(batchContext, () => this.write(entries)).then(finish);
    });
  }

  /**
   * Not expected (the cache never throws and upstream failures are per call), but a bug in
   * a batch must fail its loads rather than leave them hanging.
   */
  private failBatch(error: unknown, batch: Waiter[], started: Flight[], span: Span): void {
    const failure = toError(error);
    this.logger.error({ err: failure }, 'coalescer batch failed');
    span.recordException(failure);
    span.setStatus({ code: SpanStatusCode.ERROR });
    for (const flight of started) {
      this.flights.forget(flight);
      flight.cluster.lease?.finish({ error: true });
    }
    for (const waiter of batch) {
      waiter.reject(failure);
      waiter.joined?.leave();
    }
  }

  /** The cache promises never to throw; this guards against one that does (fail open). */
  private async read(ids: readonly string[]): Promise<Map<string, CompletionResult>> {
    const found = new Map<string, CompletionResult>();
    try {
      const values = await this.cache.getMany(ids);
      ids.forEach((id, index) => {
        const value = values[index];
        if (value) found.set(id, value);
      });
    } catch (error) {
      this.logger.warn({ err: error }, 'cache read failed; treating as misses');
    }
    return found;
  }

  private async write(entries: Array<{ id: string; value: CompletionResult }>): Promise<void> {
    try {
      await this.cache.setMany(entries);
    } catch (error) {
      this.logger.warn({ err: error }, 'cache write failed; answers are served but not kept');
    }
  }
}
