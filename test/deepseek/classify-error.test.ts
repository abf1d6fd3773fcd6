import { classifyFailure, sanitizeUpstreamMessage } from '../../src/deepseek/classify-error';
import { ErrorCode } from '../../src/errors';

const status = (code: number, body = '', headers: Record<string, string> = {}) =>
  classifyFailure({ kind: 'status', status: code, headers, body });

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
    const error = classifyFailure({
      kind: 'status',
      status: 429,
      headers: { 'x-ds-trace-id': 'fb3cc7347920593f11e4fe8116dee066' },
      body: '',
      retryAfterMs: 2000,
    });
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
    const reset = classifyFailure({ kind: 'network', error: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
    const wrapped = classifyFailure({ kind: 'network', error: new Error('fetch failed', { cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } }) });
    const odd = classifyFailure({ kind: 'network', error: new Error('something else') });
    expect([reset.code, reset.retryable, wrapped.retryable, odd.code, odd.retryable]).toEqual([
      ErrorCode.UPSTREAM_UNAVAILABLE,
      true,
      true,
      ErrorCode.UPSTREAM_UNAVAILABLE,
      false,
    ]);
    expect(reset.message).toBe('DeepSeek is unavailable (connection failed)');
  });

  it('names timeouts, an open circuit and an empty key pool', () => {
    expect(classifyFailure({ kind: 'timeout', phase: 'call', timeoutMs: 30000, attempts: 2 })).toMatchObject({
      code: ErrorCode.UPSTREAM_TIMEOUT,
      message: 'DeepSeek did not answer within 30000 ms',
      details: { attempts: 2, retryable: false },
    });
    expect(classifyFailure({ kind: 'circuit-open', retryInMs: 100 }).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect(classifyFailure({ kind: 'no-key', reason: 'unauthorized' }).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect(classifyFailure({ kind: 'no-key', reason: 'insufficient_balance' }).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
  });
});
