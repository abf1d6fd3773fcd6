export { ErrorCode, isErrorCode } from './codes';
export {
  GatewayError,
  BadUserInputError,
  UpstreamError,
  OverloadedError,
  UnreachableCaseError,
  type SafeExtensions,
  type UpstreamErrorDetails,
} from './errors';
export { UnauthenticatedError, ForbiddenError, type UnauthenticatedReason } from './auth';
