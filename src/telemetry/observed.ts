import { ValueType, type BatchObservableResult, type Meter, type Observable } from '@opentelemetry/api';

/** Structural views of the figures the layers already keep (read at each scrape only). */
export interface ObservedSources {
  transport(): {
    circuit: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
    inFlight: number;
    queued: number;
    connections: number;
    calls: number;
    failures: number;
    retries: number;
    retryBudgetExhausted: number;
    rejectedOverloaded: number;
    shortCircuited: number;
  };
  cache(): {
    kind: string;
    hits: number;
    misses: number;
    writes: number;
    errors: number;
    timeouts: number;
    entries: number | null;
    available: boolean;
    circuit: 'CLOSED' | 'OPEN' | 'HALF_OPEN';
    skipped: number;
  };
  coalescing(): {
    upstreamCalls: number;
    joinedInFlight: number;
    batches: number;
    cluster?: { mode: 'redis' | 'degraded' | 'local'; remoteJoins: number; takeovers: number; localFallbacks: number };
  };
  /** The request-byte budget (HTTP_MAX_BODY_BYTES_IN_FLIGHT, src/lib/byte-budget.ts). */
  bodies(): { held: number; refused: number };
}

const CIRCUIT_STATE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;

/**
 * Observable instruments over the counters and gauges the transport, cache, coalescer and
 * body budget already keep: nothing is recorded on the request path, the figures are read when
 * Prometheus scrapes. Returns a function that stops observing (call it on close).
 */
export function observeGateway(sources: ObservedSources, meter: Meter): () => void {
  const int = { valueType: ValueType.INT } as const;
  const gauge = (name: string, description: string, unit = '1') =>
    meter.createObservableGauge(name, { description, unit, ...int });
  const counter = (name: string, description: string, unit: string) =>
    meter.createObservableCounter(name, { description, unit, ...int });

  const circuit = gauge('gateway.upstream.circuit.state', 'Upstream circuit breaker: 0 closed, 1 half-open, 2 open.');
  const inFlight = gauge('gateway.upstream.in_flight', 'Upstream exchanges holding a concurrency slot.', '{request}');
  const queued = gauge('gateway.upstream.queued', 'Upstream attempts waiting for a concurrency slot.', '{request}');
  const connections = gauge('gateway.upstream.connections', 'Open sockets in the upstream pool.', '{connection}');
  const calls = counter('gateway.upstream.calls', 'Upstream calls made (a call is one client request, whatever its attempts).', '{call}');
  const failures = counter('gateway.upstream.failures', 'Upstream calls that ended in an error (aborts by the caller excluded).', '{call}');
  const retries = counter('gateway.upstream.retries', 'Upstream attempts repeated after a retryable failure.', '{retry}');
  const budgetExhausted = counter('gateway.upstream.retry_budget_exhausted', 'Retries refused by the retry budget.', '{retry}');
  const overloaded = counter('gateway.upstream.rejected_overloaded', 'Calls refused because the local queue was full (OVERLOADED).', '{call}');
  const shortCircuited = counter('gateway.upstream.short_circuited', 'Calls failed at once because the circuit was open.', '{call}');

  const cacheHits = counter('gateway.cache.hits', 'Completion ids found in the cache store.', '{lookup}');
  const cacheMisses = counter('gateway.cache.misses', 'Completion ids not found in the cache store.', '{lookup}');
  const cacheWrites = counter('gateway.cache.writes', 'Entries written to the cache store.', '{entry}');
  const cacheErrors = counter('gateway.cache.errors', 'Cache store calls that failed (error.type: error) or timed out (error.type: timeout).', '{call}');
  const cacheEntries = gauge('gateway.cache.entries', 'Entries in the in-memory cache store (not reported for Redis).', '{entry}');
  const cacheAvailable = gauge('gateway.cache.available', '1 while the cache store answers, 0 after a failure until it answers again.');
  const cacheCircuit = gauge('gateway.cache.circuit.state', 'Cache store circuit breaker: 0 closed, 1 half-open, 2 open (store calls skipped).');
  const cacheSkipped = counter('gateway.cache.skipped', 'Cache store calls skipped while the store circuit was open.', '{call}');

  const upstreamCalls = counter('gateway.coalescer.upstream_calls', 'Upstream completion calls started by the coalescer.', '{call}');
  const joined = counter('gateway.coalescer.joined', 'Loads that joined an identical upstream call already in flight.', '{load}');
  const batches = counter('gateway.coalescer.batches', 'Coalescer batches run.', '{batch}');
  const remoteJoins = counter('gateway.coalescer.remote_joins', 'Calls answered by an identical call another replica made (through Redis), instead of one here.', '{call}');
  const takeovers = counter('gateway.coalescer.lease_takeovers', 'Calls this replica took over from a replica that died or whose call failed.', '{call}');
  const clusterFallbacks = counter('gateway.coalescer.cluster_fallbacks', 'Calls made without a lease because Redis failed, timed out or was skipped.', '{call}');
  const clusterMode = gauge('gateway.coalescer.cluster.mode', 'Coalescing across replicas: 1 through Redis, 0 degraded (Redis not answering: per replica). Absent without REDIS_URL.');

  const bodyBytes = gauge(
    'gateway.http.body.in_flight',
    'Bytes of request bodies and graphql-ws subscribe messages held by requests and subscriptions in flight (HTTP_MAX_BODY_BYTES_IN_FLIGHT bounds them).',
    'By',
  );
  const bodyRefusals = counter(
    'gateway.http.body.refusals',
    'Requests (a 503) and subscriptions (OVERLOADED) refused because their body or subscribe message did not fit HTTP_MAX_BODY_BYTES_IN_FLIGHT.',
    '{request}',
  );

  const observables: Observable[] = [
    circuit, inFlight, queued, connections, calls, failures, retries, budgetExhausted, overloaded, shortCircuited,
    cacheHits, cacheMisses, cacheWrites, cacheErrors, cacheEntries, cacheAvailable, cacheCircuit, cacheSkipped, upstreamCalls, joined, batches,
    remoteJoins, takeovers, clusterFallbacks, clusterMode, bodyBytes, bodyRefusals,
  ];

  const callback = (result: BatchObservableResult): void => {
    const transport = sources.transport();
    result.observe(circuit, CIRCUIT_STATE[transport.circuit]);
    result.observe(inFlight, transport.inFlight);
    result.observe(queued, transport.queued);
    result.observe(connections, transport.connections);
    result.observe(calls, transport.calls);
    result.observe(failures, transport.failures);
    result.observe(retries, transport.retries);
    result.observe(budgetExhausted, transport.retryBudgetExhausted);
    result.observe(overloaded, transport.rejectedOverloaded);
    result.observe(shortCircuited, transport.shortCircuited);

    const cache = sources.cache();
    const store = { 'cache.store': cache.kind };
    result.observe(cacheHits, cache.hits, store);
    result.observe(cacheMisses, cache.misses, store);
    result.observe(cacheWrites, cache.writes, store);
    result.observe(cacheErrors, cache.errors, { ...store, 'error.type': 'error' });
    result.observe(cacheErrors, cache.timeouts, { ...store, 'error.type': 'timeout' });
    if (cache.entries !== null) result.observe(cacheEntries, cache.entries, store);
    result.observe(cacheAvailable, cache.available ? 1 : 0, store);
    result.observe(cacheCircuit, CIRCUIT_STATE[cache.circuit], store);
    result.observe(cacheSkipped, cache.skipped, store);

    const coalescing = sources.coalescing();
    result.observe(upstreamCalls, coalescing.upstreamCalls);
    result.observe(joined, coalescing.joinedInFlight);
    result.observe(batches, coalescing.batches);
    if (coalescing.cluster) {
      result.observe(remoteJoins, coalescing.cluster.remoteJoins);
      result.observe(takeovers, coalescing.cluster.takeovers);
      result.observe(clusterFallbacks, coalescing.cluster.localFallbacks);
      result.observe(clusterMode, coalescing.cluster.mode === 'redis' ? 1 : 0);
    }

    const bodies = sources.bodies();
    result.observe(bodyBytes, bodies.held);
    result.observe(bodyRefusals, bodies.refused);
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
