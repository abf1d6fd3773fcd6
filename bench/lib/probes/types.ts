import type { WindowCost } from '../observe';
import type { Service } from '../proc';

/** The counts and sizes the probes use (full run and `--quick` differ; see probes.ts). */
export interface ProbeLimits {
  wsOpNames: number;
  wsOpNameBytes: number;
  /** /metrics scrapes after the WebSocket names (the first may fail, so later ones count too). */
  wsMetricsScrapes: number;
  httpOpNames: number;
  httpOpNameChars: number;
  httpMetricsScrapes: number;
  typenameAliases: number;
  entities: number;
  repeatedFields: number[];
  messages: number;
  /** big-bodies: requests at once, and the prompt bytes of each. */
  bigBodies: number;
  bigBodyBytes: number;
  slowSockets: number;
  slowSocketCheckpointsS: number[];
  wsSubscriptions: number;
  /** Characters per word of a ws-slow-reader prompt (the simulator echoes the first 24 words). */
  wsPromptWordChars: number;
  wsPausedS: number;
  abortRequests: number;
  abortAfterMs: number;
  abortSimLatencyMs: number;
  modelAliases: number;
  redisLoadS: number;
  redisConnections: number;
}

/** Simulator request counters (bench/sim-server.ts answers `{ cmd: 'counters' }` over IPC). */
export interface SimCounters {
  total: number;
  byPath: Record<string, number>;
  byStatus: Record<string, number>;
}

export interface ProbeContext {
  limits: ProbeLimits;
  quick: boolean;
  /** The simulator child (IPC: `counters`, `setLatency`). */
  sim: Service;
  /** The simulator's usual latency (a probe that changes it puts this back). */
  simLatencyMs: number;
  /** The gateway this probe attacks: shared with other probes, or its own (`Probe.ownGateway`). */
  gateway(): Promise<Service>;
  /** A gateway with extra environment (stopped when the probe ends). */
  startGateway(extraEnv: Record<string, string>): Promise<Service>;
  /** Measures the gateway around `attack`: wall, CPU, RSS, /healthz latency of others. */
  observe<T>(gateway: Service, attack: () => Promise<T>): Promise<{ value: T; cost: WindowCost }>;
  /** Runs `close` when the probe ends, however it ends (sockets, clients, child processes). */
  defer(close: () => unknown): void;
  /** Aborted when the probe's time is up. */
  signal: AbortSignal;
  log(message: string): void;
}

/** One printed row: what was sent, what came back, what it cost, and the harm it shows. */
export interface ProbeRow {
  probe: string;
  /** What was sent, in a few words. */
  attack: string;
  /** The attacked request's status and error codes (or how it ended). */
  outcome: string;
  cost?: WindowCost;
  /** The figures that show the harm, in a few words. */
  harm: string;
  /** Everything else, for the JSON file. */
  details?: Record<string, unknown>;
}

export interface Probe {
  name: string;
  /**
   * Whether the probe gets a gateway of its own, started for it and stopped after it:
   * for probes that leave state behind (metric series, buffered memory) or need settings.
   */
  ownGateway: boolean;
  /** The probe is stopped (and reported as timed out) after this long. */
  timeoutMs(limits: ProbeLimits): number;
  /** A reason to skip it on this machine (e.g. `redis-server` is not on PATH). */
  skip?(): string | undefined;
  run(ctx: ProbeContext): Promise<ProbeRow[]>;
}
