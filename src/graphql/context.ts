import type { Authenticator, Caller } from '../auth';
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
import type { PersistedDocuments } from './persisted-documents';
import type { QuotaAccount, Quotas } from '../quotas';
import type { CacheHints } from './direct-operations';
import type { CheckedVariables } from './subscription-events';
import type { HotAnswerNotes, HotAnswers } from './hot-answers';
import type { ByteBudget } from '../lib/byte-budget';
import type { AbortSignalLike } from '../lib/abort';

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
  /** Who is calling: verifies bearer tokens (AUTH_MODE=jwt) into callers. */
  authenticator: Authenticator;
  /** The trusted-documents manifest, when PERSISTED_DOCUMENTS_FILE is set. */
  persistedDocuments?: PersistedDocuments;
  /** Per-caller quotas and spend budgets, when QUOTAS_FILE is set. */
  quotas?: Quotas;
  /** Answers to repeated completion queries, served without executing (HOT_ANSWERS_MAX_ENTRIES > 0). */
  hotAnswers?: HotAnswers;
  /** The request bodies held at once (HTTP_MAX_BODY_BYTES_IN_FLIGHT), checked by the HTTP edge. */
  bodyBudget: ByteBudget;
}

/**
 * Per-operation context, built by ONE function (`OperationPipeline.begin`) for every
 * transport: the shared services plus what lives for this operation only.
 */
export interface GraphQLContext {
  services: GatewayServices;
  /** Who is calling (subject, tenant, scopes); resolvers check scopes against it. */
  caller: Caller;
  /** The cache scope of this caller's answers: its tenant with CACHE_SCOPE=tenant, else undefined (global). */
  cacheScope: string | undefined;
  /**
   * The operation as telemetry sees it: its trace context (the one carrier: parent of
   * every span the operation causes), its cost ledger, and its span, metrics and log line.
   */
  operation: ObservedOperation;
  loaders: RequestLoaders;
  logger: Logger;
  /** Aborted when the client goes away, so shared upstream calls can be released. */
  signal: AbortSignalLike;
  /** The caller's quota account (QUOTAS_FILE); undefined when no policy applies. */
  quota: QuotaAccount | undefined;
  /** Completions this operation may still ask for (MAX_COMPLETIONS_PER_OPERATION). */
  budget: CompletionBudget;
  /**
   * Set by a subscription's resolver on its last event (the finished chunk, or the error
   * that ends the stream): that event's payload carries the operation's `extensions.cost`.
   */
  lastEvent?: boolean;
  /**
   * Set by `OperationPipeline.subscribe`: the subscription's variables as its payload check
   * coerced them, which `subscribeEvents` takes instead of coercing them again.
   */
  checkedVariables?: CheckedVariables;
  /**
   * Set by the HTTP edge when this request could get a hot answer next time: the resolvers
   * and the operation plugin note whether its answer came from the cache alone.
   */
  hotAnswer?: HotAnswerNotes;
  /**
   * Set by a direct operation (src/graphql/direct-operations.ts), which runs without Apollo's
   * cache-control plugin: the completion resolvers' cache hints are gathered here instead.
   */
  cacheHints?: CacheHints;
}
