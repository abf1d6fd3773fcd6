import { toGatewayError } from '../../src/deepseek/classify-error';
import { ChatStreamAssembler, FimStreamAssembler } from '../../src/deepseek/stream-assembler';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { TransportError } from '../../src/transport';

const chunk = (choices: unknown[], usage: unknown = null): string =>
  JSON.stringify({ id: 'id-1', object: 'chat.completion.chunk', created: 1793084842, model: 'deepseek-flash', choices, usage });

const usage = { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9, prompt_cache_hit_tokens: 3, prompt_cache_miss_tokens: 4 };

describe('chat stream assembler', () => {
  it('assembles deltas, the finish reason and a trailing usage chunk', () => {
    const assembler = new ChatStreamAssembler('deepseek-flash', 'trace');
    expect(assembler.add(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]))).toBeUndefined();
    expect(assembler.add(chunk([{ index: 0, delta: { content: 'Hel' }, finish_reason: null }]))).toEqual({
      type: 'delta',
      content: 'Hel',
      reasoningContent: '',
    });
    assembler.add(chunk([{ index: 0, delta: { content: 'lo' }, finish_reason: null }]));
    assembler.add(chunk([{ index: 0, delta: { content: '' }, finish_reason: 'stop' }]));
    assembler.add(chunk([], usage));

    expect(assembler.finish()).toEqual({
      model: 'deepseek-flash',
      content: 'Hello',
      reasoningContent: null,
      finishReason: 'stop',
      usage: { promptTokens: 7, completionTokens: 2, totalTokens: 9, cacheHitTokens: 3, cacheMissTokens: 4 },
      createdAt: new Date(1793084842 * 1000).toISOString(),
      upstreamId: 'id-1',
      traceId: 'trace',
    });
  });

  it('passes insufficient_system_resource through as the finish reason', () => {
    const assembler = new ChatStreamAssembler('deepseek-flash');
    assembler.add(chunk([{ index: 0, delta: { content: 'partial' }, finish_reason: 'insufficient_system_resource' }], usage));
    expect(assembler.finish().finishReason).toBe('insufficient_system_resource');
  });

  it('calls a stream without a finish reason truncated', () => {
    const assembler = new ChatStreamAssembler('deepseek-flash');
    assembler.add(chunk([{ index: 0, delta: { content: 'half' }, finish_reason: null }]));
    expect(() => assembler.finish()).toThrow(/truncated/);
  });

  it('rejects a data line that is not JSON', () => {
    const assembler = new ChatStreamAssembler('deepseek-flash');
    let error: unknown;
    try {
      assembler.add('{not json');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ kind: 'invalid-response', retryable: false });
    const mapped = toGatewayError(error as TransportError);
    expect(mapped).toBeInstanceOf(UpstreamError);
    expect((mapped as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((mapped as UpstreamError).message).not.toContain('not json{');
  });

  it('rejects an error object sent mid-stream, never as retryable', () => {
    const assembler = new ChatStreamAssembler('deepseek-flash');
    expect(() => assembler.add(JSON.stringify({ error: { message: 'boom' } }))).toThrow(TransportError);
    let error: unknown;
    try {
      assembler.add(JSON.stringify({ error: { type: 'rate_limit_error', message: 'slow down' } }));
    } catch (e) {
      error = e;
    }
    expect(toGatewayError(error as TransportError)).toMatchObject({ code: ErrorCode.UPSTREAM_RATE_LIMITED, details: { retryable: false } });
  });

  it('assembles FIM text chunks, taking usage from the last one-choice chunk', () => {
    const fim = (text: string, finish: string | null, chunkUsage: unknown = null): string =>
      JSON.stringify({ id: 'id-2', object: 'text_completion', created: 1793084842, model: 'deepseek-flash', choices: [{ text, index: 0, logprobs: null, finish_reason: finish }], usage: chunkUsage });
    const assembler = new FimStreamAssembler('deepseek-flash');
    expect(assembler.add(fim('return ', null))).toEqual({ type: 'delta', content: 'return ', reasoningContent: '' });
    assembler.add(fim('a + b', null));
    expect(assembler.add(fim('', 'stop', usage))).toBeUndefined();

    expect(assembler.finish()).toMatchObject({
      content: 'return a + b',
      reasoningContent: null,
      finishReason: 'stop',
      usage: { promptTokens: 7, completionTokens: 2 },
      upstreamId: 'id-2',
    });
  });

  it('calls a FIM stream without a finish reason truncated', () => {
    const assembler = new FimStreamAssembler('deepseek-flash');
    assembler.add(JSON.stringify({ id: 'id-3', object: 'text_completion', choices: [{ text: 'half', index: 0, finish_reason: null }] }));
    expect(() => assembler.finish()).toThrow(/truncated/);
  });
});
