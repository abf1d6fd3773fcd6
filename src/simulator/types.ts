/**
 * The simulator's public contract. Other layers and every test in the repo code against
 * these names, so they are only ever extended, never renamed.
 */

export interface SimulatorOptions {
  /** Interface to listen on; default '127.0.0.1'. */
  host?: string;
  /** Port to listen on; default 0 (ephemeral). */
  port?: number;
  /** Accepted Bearer keys; undefined = any non-empty key is accepted. */
  apiKeys?: string[];
  /** Keys that get 402 Insufficient Balance on chat and FIM (listing and balance still work). */
  exhaustedKeys?: string[];
  /** Queue time before a completion starts (default 0). */
  latencyMs?: number;
  /** Delay between streamed tokens (default 0). */
  tokenDelayMs?: number;
  /**
   * While a completion is "queued" (latencyMs), send '\n' (non-stream) or ': keep-alive\n\n'
   * (stream) every N ms, committing status 200 first as DeepSeek does; default 0 = none.
   */
  keepAliveIntervalMs?: number;
  /**
   * Where chat stream usage goes when `stream_options.include_usage` is set: a trailing
   * `choices:[]` chunk (default, per the docs) or on the finish chunk.
   */
  streamUsage?: 'separate' | 'on-finish';
  /** Status for the retired `deepseek-chat` / `deepseek-reasoner` (default 400). */
  retiredModelStatus?: 400 | 404;
}

export type Fault =
  /** The documented DeepSeek error body for `status`, with an optional Retry-After header. */
  | { kind: 'status'; status: number; retryAfterSeconds?: number; message?: string }
  /** Destroy the socket (TCP RST) without any response. */
  | { kind: 'reset' }
  /** Accept the request and never answer, until the client goes away or close(). */
  | { kind: 'hang' }
  /**
   * 200 then '\n' lines (non-stream) or ': keep-alive' comments (stream) every `intervalMs`
   * (default 50). `count` undefined = forever (never answers), else then answers normally
   * (status already committed, so a later error is written in the 200 body).
   */
  | { kind: 'blank-lines'; count?: number; intervalMs?: number }
  /**
   * Streams: end the response cleanly after `afterChunks` data events (default 1), never
   * sending the finish chunk or [DONE]. Non-stream: send half the JSON, then end.
   */
  | { kind: 'truncate'; afterChunks?: number }
  /** Extra silence of `ms` before the request is handled at all. */
  | { kind: 'delay'; ms: number };

export interface FaultInjector {
  /** The next `count` (default 1) matching requests get `fault`. `path` filters by URL path (e.g. '/chat/completions'); faults queue FIFO. */
  inject(fault: Fault, options?: { count?: number; path?: string }): void;
  /** Random faults for chaos runs: each request independently gets the first fault whose probability hits. */
  setRandom(mix: Array<{ probability: number; fault: Fault }>, seed?: number): void;
  /** Drops queued and random faults. */
  clear(): void;
  /** Queued fault applications not yet used (sum of remaining counts). */
  readonly pending: number;
}

export interface SimulatorCounters {
  readonly total: number;
  /** Requests per URL path, e.g. { '/chat/completions': 3 }; '/v1/chat/completions' counts under its own path. */
  readonly byPath: Record<string, number>;
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly connectionsOpened: number;
  /** Responses per status, counted when the status line is committed. */
  readonly byStatus: Record<number, number>;
  /** Zero everything (maxInFlight := current inFlight). */
  reset(): void;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** As received, lower-cased by node (tests check auth rotation and traceparent). */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined when absent or not JSON. */
  body: unknown;
  /** What the simulator answered; undefined for reset/hang or while still queued. */
  status?: number;
  /** Date.now() when the request was received. */
  at: number;
}

export interface Simulator {
  /** Base URL such as 'http://127.0.0.1:43121' (no trailing slash). */
  readonly url: string;
  readonly faults: FaultInjector;
  readonly counters: SimulatorCounters;
  /** The last 1000 requests, oldest first (a live array: `requests.length = 0` clears it). */
  readonly requests: RecordedRequest[];
  /** Change latency etc. at run time; applies to requests that reach the affected step afterwards. */
  setOptions(options: Partial<SimulatorOptions>): void;
  /** Closes the server and destroys open sockets (hung ones included); resolves when done. */
  close(): Promise<void>;
}
