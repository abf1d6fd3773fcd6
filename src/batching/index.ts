export {
  CompletionService,
  type CachePolicy,
  type CoalescingStats,
  type CompletionLoadKey,
  type CompletionView,
  type JoinedCompletion,
  type JoinRunning,
  type RequestLoaders,
} from './completion-service';
export type { OperationScope } from './request-scope';

