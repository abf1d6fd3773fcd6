import { DeepSeekClient, type DeepSeekClientOptions } from './client';

export { DeepSeekClient, type DeepSeekClientOptions } from './client';
export type { TransportStatus, KeyStatus, TransportTuning } from '../transport';
export { toGatewayError, sanitizeUpstreamMessage } from './classify-error';
export {
  PATHS,
  TRACE_ID_HEADER,
  FINISH_REASONS,
  UNCACHEABLE_FINISH_REASONS,
  isStorable,
  RETRYABLE_STATUSES,
  DEEPSEEK_BASE_URL,
  CURRENT_MODELS,
  MODEL_ALIASES,
  RETIRED_MODELS,
  CHAT_LIMITS,
  lookupModel,
  type ModelLookup,
} from './provider';
export * from './types';

/** Builds the DeepSeek client and its transport (one undici pool) from the config section. */
export function createDeepSeekClient(options: DeepSeekClientOptions): DeepSeekClient {
  return new DeepSeekClient(options);
}
