export { Transport, type TransportOptions, type TransportSettings, type TransportTuning } from './transport';
export type { TransportStatus, KeyStatus, BreakerTransition, CircuitStateName, KeyDisableReason } from './status';
export type {
  Dispatch,
  ErrorType,
  HttpMethod,
  Interceptor,
  ResponseHeaders,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamResponse,
} from './types';
export { compose, headerValue } from './types';
export {
  TransportError,
  DEFAULT_RETRYABLE_STATUSES,
  isRetryableNetworkError,
  type TransportErrorKind,
  type TransportErrorOptions,
  type TransportFailure,
} from './errors';
export { keyFingerprint } from './key-pool';
export { parseRetryAfter } from './retry-after';
export { isHealthFailure } from './breaker';
