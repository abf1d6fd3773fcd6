import type { FinishReason as WireFinishReason } from '../../deepseek/types';
import type { CompletionResolvers, FinishReason } from '../generated/types';

/** DeepSeek's finish reasons as the schema's enum values (shared by queries and streams). */
export const FINISH_REASON: Record<WireFinishReason, FinishReason> = {
  stop: 'STOP',
  length: 'LENGTH',
  content_filter: 'CONTENT_FILTER',
  tool_calls: 'TOOL_CALLS',
  insufficient_system_resource: 'INSUFFICIENT_SYSTEM_RESOURCE',
};

export const Completion: CompletionResolvers = {
  // Federation entity: the router resolves a completion by id from the cache only (an
  // unknown id is null, never an upstream call).
  __resolveReference: (reference, { loaders }) => loaders.byId.load(reference.id),
  finishReason: (completion) => FINISH_REASON[completion.finishReason],
};
