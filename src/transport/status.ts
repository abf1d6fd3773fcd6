export type CircuitStateName = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

export type KeyDisableReason = 'unauthorized' | 'insufficient_balance';

export interface KeyStatus {
  /** `key_` + the first 8 hex characters of sha256(key): never the key or its suffix. */
  fingerprint: string;
  state: 'active' | 'disabled';
  reason?: KeyDisableReason;
}

export interface BreakerTransition {
  to: CircuitStateName;
  /** ISO-8601 time of the transition. */
  at: string;
}

/** A snapshot of the transport, for the GraphQL `upstream` field and `/readyz`. */
export interface TransportStatus {
  circuit: CircuitStateName;
  /**
   * A half-open probe call is in flight: every other call fails fast until it ends, so a
   * readiness check should answer "not ready" now, as while OPEN.
   */
  probeInFlight: boolean;
  /** Upstream exchanges holding a concurrency slot. */
  inFlight: number;
  /** Attempts waiting for a slot. */
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  /** Open sockets in the undici pool. */
  connections: number;
  /** Calls made (a call is one client request, whatever its attempts). */
  calls: number;
  /** Calls that ended in an error (callers' own aborts and calls cut or refused by shutdown excluded). */
  failures: number;
  retries: number;
  retryBudgetExhausted: number;
  rejectedOverloaded: number;
  shortCircuited: number;
  keys: KeyStatus[];
  /** The last 50 transitions, oldest first. */
  breakerTransitions: BreakerTransition[];
}

/** Counters owned by one transport instance (never module-level state). */
export class TransportCounters {
  calls = 0;
  failures = 0;
  retries = 0;
  retryBudgetExhausted = 0;
  rejectedOverloaded = 0;
  shortCircuited = 0;
}
