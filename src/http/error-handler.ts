import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../errors';
import type { Logger } from '../telemetry/logger';

/**
 * Fastify answers body errors (malformed JSON, too large, bad content type) before Apollo
 * sees the request; answer them as GraphQL errors in JSON, never HTML or a stack trace.
 */
export function graphqlErrorHandler(logger: Logger, bodyLimitBytes: number) {
  return (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) logger.error({ err: error }, 'unhandled HTTP error');
    const message = status === 500 ? 'Internal server error' : clientMessage(error, bodyLimitBytes);
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send({
        errors: [{ message, extensions: { code: status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : ErrorCode.BAD_REQUEST } }],
      });
  };
}

function clientMessage(error: FastifyError, bodyLimitBytes: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The request body is not valid JSON.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `The request body is larger than ${bodyLimitBytes} bytes.`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported content type: send application/json.';
    default:
      return error.message;
  }
}
