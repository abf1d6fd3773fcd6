export { ErrorCode, isErrorCode } from './codes';
export {
  GatewayError,
  BadUserInputError,
  UpstreamError,
  OverloadedError,
  QuotaExceededError,
  type QuotaLimit,
  UnreachableCaseError,
  type SafeExtensions,
  type UpstreamErrorDetails,
} from './errors';
export { UnauthenticatedError, ForbiddenError, type UnauthenticatedReason } from './auth';
