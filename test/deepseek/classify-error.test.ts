import {
  errorInBody,
  errorTypeOf,
  invalidResponse,
  publicError,
  sanitizeUpstreamMessage,
  streamBodyFailure,
  toGatewayError,
} from '../../src/deepseek/classify-error';
import { RETRYABLE_STATUSES } from '../../src/deepseek/provider';
import { ErrorCode, OverloadedError, UpstreamError } from '../../src/errors';
import { TransportError } from '../../src/transport';

/** A status failure as the exchange makes it, with DeepSeek's retryable statuses. */
const statusError = (code: number, body = '', options: { traceId?: string; retryAfterMs?: number } = {}) =>
  new TransportError(
    { kind: 'status', status: code, body, retryAfterMs: options.retryAfterMs },
    { retryable: RETRYABLE_STATUSES.has(code), traceId: options.traceId },
  );
const status = (code: number, body = '', options: { traceId?: string; retryAfterMs?: number } = {}) =>
  toGatewayError(statusError(code, body, options)) as UpstreamError;

describe('error classification', () => {
  it('maps statuses to public codes and retryability', () => {
    expect([400, 401, 402, 403, 422, 429, 500, 502, 503, 504, 501, 404].map((s) => [s, status(s).code, status(s).retryable])).toEqual([
      [400, ErrorCode.UPSTREAM_REJECTED, false],
      [401, ErrorCode.UPSTREAM_AUTH_FAILED, false],
      [402, ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE, false],
      [403, ErrorCode.UPSTREAM_AUTH_FAILED, false],
      [422, ErrorCode.UPSTREAM_REJECTED, false],
      [429, ErrorCode.UPSTREAM_RATE_LIMITED, true],
      [500, ErrorCode.UPSTREAM_UNAVAILABLE, true],
      [502, ErrorCode.UPSTREAM_UNAVAILABLE, true],
      [503, ErrorCode.UPSTREAM_UNAVAILABLE, true],
      [504, ErrorCode.UPSTREAM_UNAVAILABLE, true],
      [501, ErrorCode.UPSTREAM_UNAVAILABLE, false],
      [404, ErrorCode.UPSTREAM_UNAVAILABLE, false],
    ]);
  });

  it('keeps the trace id from x-ds-trace-id and the Retry-After delay', () => {
    const error = status(429, '', { traceId: 'fb3cc7347920593f11e4fe8116dee066', retryAfterMs: 2000 });
    expect(error.details).toMatchObject({ traceId: 'fb3cc7347920593f11e4fe8116dee066', retryAfterMs: 2000 });
    expect(error.extensions).toMatchObject({ upstreamTraceId: 'fb3cc7347920593f11e4fe8116dee066', upstreamStatus: 429 });
  });

  it('shows DeepSeek messages for rejections only, sanitised', () => {
    const body = JSON.stringify({ error: { message: 'Bad key sk-abc123DEF in Authentication Fails, Your api key: ****0000 is invalid' } });
    const rejected = status(400, body);
    expect(rejected.details.upstreamMessage).toBe('Bad key [redacted] in Authentication Fails, Your api key: [redacted] is invalid');
    expect(rejected.message).toBe(`DeepSeek rejected the request: ${rejected.details.upstreamMessage}`);
    expect(status(401, body).message).toBe('DeepSeek refused the API key (HTTP 401)');
    expect(status(401, body).details.upstreamMessage).toBeUndefined();
  });

  it('never shows a body that is not a DeepSeek error object', () => {
    const error = status(400, '<html>proxy error page</html>');
    expect(error.message).toBe('DeepSeek rejected the request (HTTP 400)');
    expect(error.details.upstreamMessage).toBeUndefined();
  });

  it('cuts upstream messages to 300 characters and drops control characters', () => {
    const message = sanitizeUpstreamMessage(`line one\nline\ttwo ${'x'.repeat(400)}`);
    expect(message.length).toBe(300);
    expect(message.startsWith('line one line two x')).toBe(true);
  });

  it('classifies socket failures as retryable UPSTREAM_UNAVAILABLE and others as not retryable', () => {
    const network = (error: unknown) => toGatewayError(TransportError.network(error)) as UpstreamError;
    const reset = network(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    const wrapped = network(new Error('fetch failed', { cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } }));
    const odd = network(new Error('something else'));
    expect([reset.code, reset.retryable, wrapped.retryable, odd.code, odd.retryable]).toEqual([
      ErrorCode.UPSTREAM_UNAVAILABLE,
      true,
      true,
      ErrorCode.UPSTREAM_UNAVAILABLE,
      false,
    ]);
    expect(reset.message).toBe('DeepSeek is unavailable (connection failed)');
    expect((reset.cause as Error).message).toBe('read ECONNRESET');
  });

  it('names timeouts and an open circuit', () => {
    expect(toGatewayError(new TransportError({ kind: 'timeout', phase: 'call', timeoutMs: 30000 }, { attempts: 2 }))).toMatchObject({
      code: ErrorCode.UPSTREAM_TIMEOUT,
      message: 'DeepSeek did not answer within 30000 ms',
      details: { attempts: 2, retryable: false },
    });
    expect(toGatewayError(new TransportError({ kind: 'timeout', phase: 'stream', timeoutMs: 400 }))).toMatchObject({
      code: ErrorCode.UPSTREAM_TIMEOUT,
      message: "DeepSeek's stream did not finish within 400 ms",
    });
    expect(toGatewayError(new TransportError({ kind: 'circuit-open', retryInMs: 100 }))).toMatchObject({
      code: ErrorCode.UPSTREAM_UNAVAILABLE,
      details: { attempts: 0, retryable: false },
    });
    expect(toGatewayError(new TransportError({ kind: 'circuit-open', retryInMs: 0, probeInFlight: true }))).toMatchObject({
      code: ErrorCode.UPSTREAM_UNAVAILABLE,
      message: 'DeepSeek is unavailable (circuit open after repeated failures; a probe call is testing it now)',
      details: { attempts: 0, retryable: false },
    });
  });

  it('names a full queue OVERLOADED and a closed client UPSTREAM_UNAVAILABLE', () => {
    expect(toGatewayError(new TransportError({ kind: 'overloaded' }))).toBeInstanceOf(OverloadedError);
    expect(toGatewayError(new TransportError({ kind: 'closed' }))).toMatchObject({
      code: ErrorCode.UPSTREAM_UNAVAILABLE,
      message: 'The DeepSeek client is closed',
    });
  });

  it('maps a 2xx the client could not use by the error object in it, else as unreadable', () => {
    const unreadable = toGatewayError(invalidResponse('not JSON', 't').with({ attempts: 3 }));
    expect(unreadable).toMatchObject({
      code: ErrorCode.UPSTREAM_UNAVAILABLE,
      message: 'DeepSeek sent an unreadable response (not JSON)',
      details: { status: 200, traceId: 't', retryable: true, attempts: 3 },
    });
    const codes = ['invalid_request_error', 'authentication_error', 'rate_limit_error', 'server_error'].map((type) => {
      const error = toGatewayError(errorInBody({ type, message: `about ${type}` })) as UpstreamError;
      return [error.code, error.retryable];
    });
    expect(codes).toEqual([
      [ErrorCode.UPSTREAM_REJECTED, false],
      [ErrorCode.UPSTREAM_AUTH_FAILED, false],
      [ErrorCode.UPSTREAM_RATE_LIMITED, true],
      [ErrorCode.UPSTREAM_UNAVAILABLE, true],
    ]);
    expect((toGatewayError(errorInBody({ type: 'rate_limit_error' }, 't', { midStream: true })) as UpstreamError).retryable).toBe(false);
    // Only the sanitised message is kept, even inside the transport's error.
    const echoed = errorInBody({ type: 'invalid_request_error', message: 'key sk-secret-key-123 refused' });
    expect(JSON.stringify(echoed.failure)).not.toContain('sk-secret-key-123');
  });

  it('passes a caller abort through and names failures for telemetry by their public code', () => {
    const abort = new Error('gone');
    expect(publicError(abort)).toBe(abort);
    expect(errorTypeOf(abort)).toBe('ABORTED');
    expect(errorTypeOf(statusError(503))).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect(errorTypeOf(new TransportError({ kind: 'overloaded' }))).toBe(ErrorCode.OVERLOADED);
  });

  it('names an error met in a stream body: the abort as is, a socket error with the attempt count', () => {
    const controller = new AbortController();
    const socket = streamBodyFailure(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), controller.signal, 2);
    expect(socket).toMatchObject({ kind: 'network', attempts: 2 });
    const lifetime = streamBodyFailure(new TransportError({ kind: 'timeout', phase: 'stream', timeoutMs: 400 }), controller.signal, 2);
    expect(lifetime).toMatchObject({ kind: 'timeout', attempts: 2 });
    const bad = invalidResponse('x');
    expect(streamBodyFailure(bad, controller.signal, 2)).toBe(bad);
    controller.abort(new Error('caller left'));
    expect(streamBodyFailure(bad, controller.signal, 2)).toBe(controller.signal.reason);
  });
});
