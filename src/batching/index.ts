export {
  CompletionService,
  type CachePolicy,
  type CoalescingStats,
  type CompletionLoadKey,
  type CompletionView,
  type RequestLoaders,
} from './completion-service';
export { StreamHub, type StreamChunk, type StreamHubOptions, type StreamHubStats } from './stream-hub';
