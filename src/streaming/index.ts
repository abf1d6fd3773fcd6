export { StreamHub } from './stream-hub';
export type { StreamChunk, StreamHubOptions, StreamHubStats, SubscribeOptions } from './types';
