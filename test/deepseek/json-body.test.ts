import { Readable } from 'node:stream';
import { readJsonBody } from '../../src/deepseek/json-body';
import { ErrorCode, UpstreamError } from '../../src/errors';

describe('JSON body reader', () => {
  it('strips the blank lines DeepSeek sends before the JSON while queued', async () => {
    await expect(readJsonBody(Readable.from(['\n', '\n\n\n', '{"ok":', 'true}']))).resolves.toEqual({ ok: true });
  });

  it('turns a body that is not JSON into a retryable UPSTREAM_UNAVAILABLE without the raw text', async () => {
    const error: unknown = await readJsonBody(Readable.from(['\n<html>secret upstream page</html>']), 'trace1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).details).toMatchObject({ retryable: true, traceId: 'trace1' });
    expect((error as UpstreamError).message).not.toContain('secret');
  });

  it('treats a body of blank lines only as unreadable', async () => {
    await expect(readJsonBody(Readable.from(['\n\n\n']))).rejects.toMatchObject({ code: ErrorCode.UPSTREAM_UNAVAILABLE });
  });
});
