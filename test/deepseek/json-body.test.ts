import { Readable } from 'node:stream';
import { toGatewayError } from '../../src/deepseek/classify-error';
import { readJsonBody } from '../../src/deepseek/json-body';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { TransportError } from '../../src/transport';

/** What `readJsonBody` rejects with (a TransportError), as the client reports it. */
async function failure(body: Readable, traceId?: string): Promise<UpstreamError> {
  const error: unknown = await readJsonBody(body, traceId).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(TransportError);
  expect(error).toMatchObject({ kind: 'invalid-response', retryable: true });
  return toGatewayError(error as TransportError) as UpstreamError;
}

describe('JSON body reader', () => {
  it('strips the blank lines DeepSeek sends before the JSON while queued', async () => {
    await expect(readJsonBody(Readable.from(['\n', '\n\n\n', '{"ok":', 'true}']))).resolves.toEqual({ ok: true });
  });

  it('turns a body that is not JSON into a retryable UPSTREAM_UNAVAILABLE without the raw text', async () => {
    const error = await failure(Readable.from(['\n<html>secret upstream page</html>']), 'trace1');
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).details).toMatchObject({ retryable: true, traceId: 'trace1' });
    expect((error as UpstreamError).message).not.toContain('secret');
  });

  it('treats a body of blank lines only as unreadable', async () => {
    await expect(failure(Readable.from(['\n\n\n']))).resolves.toMatchObject({ code: ErrorCode.UPSTREAM_UNAVAILABLE });
  });
});
