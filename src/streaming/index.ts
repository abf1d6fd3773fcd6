export { StreamHub, type StreamChunk, type StreamHubOptions, type StreamHubStats } from './stream-hub';
