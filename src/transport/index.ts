export { Transport, type CallSpec, type StreamSpec, type OpenStream, type TransportOptions, type TransportSettings, type TransportTuning } from './transport';
export type { TransportStatus, KeyStatus, BreakerTransition, CircuitStateName, KeyDisableReason } from './status';
export type { Classifier, TransportFailure, TransportResponse, ResponseHeaders, HttpMethod, Dispatch, Interceptor, TransportRequest } from './types';
export { compose } from './types';
export { keyFingerprint } from './key-pool';
export { parseRetryAfter } from './retry-after';
export { headerValue } from './dispatch';
export { isHealthFailure } from './breaker';
