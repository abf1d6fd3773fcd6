import type { SimulatorOptions } from './types';

/** SimulatorOptions with every default filled in (the one place defaults live). */
export interface ResolvedOptions {
  host: string;
  port: number;
  /** undefined = any non-empty key is accepted. */
  apiKeys: ReadonlySet<string> | undefined;
  exhaustedKeys: ReadonlySet<string>;
  latencyMs: number;
  tokenDelayMs: number;
  keepAliveIntervalMs: number;
  streamUsage: 'separate' | 'on-finish';
  retiredModelStatus: 400 | 404;
}

const DEFAULTS: ResolvedOptions = {
  host: '127.0.0.1',
  port: 0,
  apiKeys: undefined,
  exhaustedKeys: new Set(),
  latencyMs: 0,
  tokenDelayMs: 0,
  keepAliveIntervalMs: 0,
  streamUsage: 'separate',
  retiredModelStatus: 400,
};

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`simulator: ${name} must be a number >= 0`);
  return value;
}

/** Applies `patch` over `base`; an explicit `apiKeys: undefined` goes back to "any key". */
export function resolveOptions(patch: Partial<SimulatorOptions>, base: ResolvedOptions = DEFAULTS): ResolvedOptions {
  const apiKeys = 'apiKeys' in patch ? patch.apiKeys : undefined;
  return {
    host: patch.host ?? base.host,
    port: patch.port ?? base.port,
    apiKeys: 'apiKeys' in patch ? (apiKeys === undefined ? undefined : new Set(apiKeys)) : base.apiKeys,
    exhaustedKeys: patch.exhaustedKeys === undefined ? base.exhaustedKeys : new Set(patch.exhaustedKeys),
    latencyMs: nonNegative('latencyMs', patch.latencyMs ?? base.latencyMs),
    tokenDelayMs: nonNegative('tokenDelayMs', patch.tokenDelayMs ?? base.tokenDelayMs),
    keepAliveIntervalMs: nonNegative('keepAliveIntervalMs', patch.keepAliveIntervalMs ?? base.keepAliveIntervalMs),
    streamUsage: patch.streamUsage ?? base.streamUsage,
    retiredModelStatus: patch.retiredModelStatus ?? base.retiredModelStatus,
  };
}
