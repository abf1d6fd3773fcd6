/** The probes of `npm run probes`, by what they attack (bench/probes.ts runs them in order). */
export * as connections from './connections';
export * as documents from './documents';
export * as errors from './errors';
export * as metrics from './metrics';
export * as upstream from './upstream';
