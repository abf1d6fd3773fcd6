export { StreamHub } from './stream-hub';
export type { StreamChunk, StreamHubOptions, StreamHubStats } from './types';
