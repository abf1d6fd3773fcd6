import type { Config } from '../config';
import type { CompletionService, RequestLoaders } from '../batching/completion-service';
import type { AccountInfoCache } from '../cache/account-info';
import type { CompletionCache } from '../cache/completion-cache';
import type { DeepSeekApi } from '../deepseek/types';
import type { StreamHub } from '../streaming/stream-hub';
import type { ObservedOperation } from '../telemetry/operation-observer';
import type { Logger } from '../telemetry/logger';
import type { TransportStatus } from '../transport';
import type { CompletionBudget } from './limits';

/** Process-wide services, built once at start-up and shared by every operation. */
export interface GatewayServices {
  config: Config;
  deepseek: DeepSeekApi & { status(): TransportStatus };
  completions: CompletionService;
  cache: CompletionCache;
  /** Fan-out of streamed completions (`Subscription.completionStream`). */
  streams: StreamHub;
  /** The account's models and balance, kept briefly. */
  accountInfo: AccountInfoCache;
}

/**
 * Per-operation context, built by ONE function (`OperationPipeline.begin`) for every
 * transport: the shared services plus what lives for this operation only.
 */
export interface GraphQLContext {
  services: GatewayServices;
  /**
   * The operation as telemetry sees it: its trace context (the one carrier: parent of
   * every span the operation causes), its cost ledger, and its span, metrics and log line.
   */
  operation: ObservedOperation;
  loaders: RequestLoaders;
  logger: Logger;
  /** Aborted when the client goes away, so shared upstream calls can be released. */
  signal: AbortSignal;
  /** Completions this operation may still ask for (MAX_COMPLETIONS_PER_OPERATION). */
  budget: CompletionBudget;
}
