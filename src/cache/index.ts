export { cacheKey, completionId, isCompletionId } from './key';
export {
  createCompletionCache,
  type CacheStats,
  type CacheStoreKind,
  type CompletionCache,
} from './completion-cache';
