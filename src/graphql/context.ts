import type { Context } from '@opentelemetry/api';
import type { Config } from '../config';
import type { CompletionService, RequestLoaders } from '../batching/completion-service';
import type { StreamHub } from '../streaming/stream-hub';
import type { CompletionCache } from '../cache/completion-cache';
import type { DeepSeekApi } from '../deepseek/types';
import type { TransportStatus } from '../transport';
import type { Logger } from '../telemetry/logger';
import type { CompletionBudget } from './limits';
import type { RequestLedger } from '../telemetry/ledger';

/** Process-wide services, built once at start-up and shared by every operation. */
export interface GatewayServices {
  config: Config;
  deepseek: DeepSeekApi & { status(): TransportStatus };
  completions: CompletionService;
  cache: CompletionCache;
  /** Fan-out of streamed completions (`Subscription.completionStream`). */
  streams: StreamHub;
}

/** Per-operation context: the shared services plus loaders that live for this operation only. */
export interface GraphQLContext {
  services: GatewayServices;
  loaders: RequestLoaders;
  logger: Logger;
  /** Aborted when the client goes away, so shared upstream calls can be released. */
  signal: AbortSignal;
  /** Completions this operation may still ask for (MAX_COMPLETIONS_PER_OPERATION). */
  budget: CompletionBudget;
  /**
   * What this operation cost (cache hits, upstream calls, waits) and its trace context;
   * read by the plugins in src/graphql/plugins. Absent outside Apollo's HTTP pipeline.
   */
  ledger?: RequestLedger;
  /** The operation span's context where there is no ledger (WebSocket subscriptions). */
  traceContext?: Context;
}
