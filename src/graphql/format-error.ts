import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ErrorCode, GatewayError, isErrorCode } from '../errors';
import type { Logger } from '../telemetry/logger';

const MASKED_MESSAGE = 'Internal server error';

/** graphql-js's message when the parser stops at `maxTokens`. */
const TOKEN_LIMIT = /^Syntax Error: Document contains more that (\d+) tokens\. Parsing aborted\.$/;
/** graphql-js's last variable error once it has reported its maximum. */
const TOO_MANY_VARIABLE_ERRORS = /^Too many errors processing variables/;
/** graphql-js's field and type suggestions, which reveal the schema. */
const SUGGESTION = / ?Did you mean(.+?)\?$/;

export interface FormatErrorOptions {
  /** Production: no "Did you mean …" suggestions (introspection is off there too). */
  hideSchemaDetails: boolean;
}

/**
 * The one place errors are shaped for clients, whatever the transport. Our own
 * `GatewayError`s keep their code and safe extensions; Apollo's request-level errors keep
 * theirs (a request-level error Apollo raised with a 4xx status but no code, such as an
 * APQ hash mismatch, is BAD_REQUEST); an operation whose client went away is
 * CLIENT_CLOSED_REQUEST (nobody reads it; logs and metrics do); anything else is masked
 * as INTERNAL_SERVER_ERROR and logged with the original. Never throws.
 */
export function createFormatError(logger: Logger, options: FormatErrorOptions) {
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
      if (isAbort(original)) {
        logger.debug({ path: formatted.path }, 'operation ended: the client closed the request');
        return { message: 'The client closed the request.', path: formatted.path, extensions: { code: ErrorCode.CLIENT_CLOSED_REQUEST } };
      }
      const code = formatted.extensions?.code;
      // graphql-js stops coercing variables after 50 errors with an error of its own, which
      // Apollo leaves without a code: it is about the input like the 50 before it.
      if (original instanceof GraphQLError && original.path === undefined && TOO_MANY_VARIABLE_ERRORS.test(original.message)) {
        return { message: formatted.message, extensions: { code: ErrorCode.BAD_USER_INPUT } };
      }
      if (original instanceof GraphQLError && isRequestLevel4xx(original)) {
        return { message: formatted.message, locations: formatted.locations, extensions: { code: ErrorCode.BAD_REQUEST } };
      }
      if (isErrorCode(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR && !isUnexpected(original)) {
        // Parse/validation/variable errors from Apollo: their message is about the query.
        // `http` is Apollo's status hint: Apollo strips it over HTTP, the streaming
        // transports (which format refusals here too) must not send it either.
        const { stacktrace: _stacktrace, http: _http, ...extensions } = formatted.extensions ?? {};
        return { ...formatted, message: publicMessage(formatted.message, options), extensions: { ...extensions, ...limitOf(formatted.message) } };
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

/** An operation abandoned because its client went away (src/http/disconnect.ts). */
function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** A GraphQLError about the request (no field path, no cause) that Apollo gave a 4xx but no code. */
function isRequestLevel4xx(error: GraphQLError): boolean {
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  return (
    error.extensions.code === undefined &&
    error.path === undefined &&
    error.originalError === undefined &&
    typeof status === 'number' &&
    status >= 400 &&
    status < 500
  );
}

/** The message a client sees: the token limit named after its setting; no suggestions in production. */
function publicMessage(message: string, options: FormatErrorOptions): string {
  const tokens = TOKEN_LIMIT.exec(message);
  if (tokens) return `Syntax Error: Document contains more than ${tokens[1]} tokens (GRAPHQL_MAX_TOKENS). Parsing aborted.`;
  return options.hideSchemaDetails ? message.replace(SUGGESTION, '') : message;
}

function limitOf(message: string): { limit?: string } {
  return TOKEN_LIMIT.test(message) ? { limit: 'GRAPHQL_MAX_TOKENS' } : {};
}

function definedOnly(extensions: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(extensions).filter(([, value]) => value !== undefined));
}
