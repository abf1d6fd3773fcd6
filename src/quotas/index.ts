import type { Meter } from '@opentelemetry/api';
import type { PriceTable, QuotasConfig } from '../config';
import { connectRedisClient } from '../lib/redis-client';
import type { Logger } from '../telemetry/logger';
import { CounterStore } from './counters';
import { loadPolicies } from './policy';
import { Quotas } from './quotas';

export { Quotas, QuotaAccount, Reservation, addressSubject, type UsageReport, type LimitReading, type OnRefusal } from './quotas';
export { parsePolicies, loadPolicies, QuotaFileError, type QuotaPolicies, type QuotaPolicy } from './policy';
export { CounterStore } from './counters';

/** Redis keys of the quota counters start with this. */
export const QUOTA_KEY_PREFIX = 'gwq';

/** The quotas of a running gateway, and how to release their Redis client. */
export interface QuotaService {
  quotas: Quotas;
  close(): Promise<void>;
}

/**
 * Builds the quotas from QUOTAS_FILE (undefined without one: nothing is limited). With
 * REDIS_URL the counters live in Redis, on a client of their own, shared by every replica;
 * otherwise in this process. A file that cannot be used stops start-up (`QuotaFileError`).
 */
export function createQuotas(
  config: QuotasConfig,
  deps: { prices: PriceTable; meter: Meter; logger: Logger },
): QuotaService | undefined {
  if (!config.file) return undefined;
  const policies = loadPolicies(config.file);
  const redis = config.redisUrl ? connectRedisClient({ url: config.redisUrl, logger: deps.logger, name: 'quota counters' }) : undefined;
  const store = new CounterStore({
    redis: redis?.client,
    replicas: config.replicas,
    timeoutMs: config.redisTimeoutMs,
    keyPrefix: QUOTA_KEY_PREFIX,
    // A slot left by a replica that died expires once no stream it could hold is still open.
    openTtlSec: Math.ceil(config.streamMaxMs / 1000) + 60,
    logger: deps.logger,
  });
  const quotas = new Quotas({
    policies,
    store,
    prices: deps.prices,
    defaultMaxOutputTokens: config.defaultMaxOutputTokens,
    meter: deps.meter,
    logger: deps.logger,
  });
  deps.logger.info(
    { tenants: Object.keys(policies.tenants).length, default: policies.default !== undefined, shared: redis !== undefined },
    'quotas loaded',
  );
  return { quotas, close: async () => redis?.close() };
}
