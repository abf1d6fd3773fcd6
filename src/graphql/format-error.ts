import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ErrorCode, GatewayError, isErrorCode } from '../errors';
import type { Logger } from '../telemetry/logger';

const MASKED_MESSAGE = 'Internal server error';

/**
 * The one place errors are shaped for clients. Our own `GatewayError`s keep their code and
 * safe extensions; Apollo's request-level errors keep theirs; anything else is masked as
 * INTERNAL_SERVER_ERROR and logged with the original. Never throws.
 */
export function createFormatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    try {
      const original = unwrapResolverError(error);
      if (original instanceof GatewayError) {
        return {
          message: original.message,
          locations: formatted.locations,
          path: formatted.path,
          extensions: { code: original.code, ...definedOnly(original.extensions) },
        };
      }
      const code = formatted.extensions?.code;
      if (isErrorCode(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR && !isUnexpected(original)) {
        // Parse/validation/variable errors from Apollo: their message is about the query.
        const { stacktrace: _stacktrace, ...extensions } = formatted.extensions ?? {};
        return { ...formatted, extensions };
      }
      logger.error({ err: original, path: formatted.path }, 'unexpected error masked');
      return {
        message: MASKED_MESSAGE,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
      };
    } catch {
      return { message: MASKED_MESSAGE, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
    }
  };
}

/** Anything but a GraphQLError that Apollo or graphql-js created about the request itself. */
function isUnexpected(error: unknown): boolean {
  return !(error instanceof GraphQLError);
}

function definedOnly(extensions: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(extensions).filter(([, value]) => value !== undefined));
}
