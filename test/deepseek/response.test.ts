import { toGatewayError } from '../../src/deepseek/classify-error';
import { fromWireChatCompletion, fromWireFimCompletion, fromWireModelList, toUsage } from '../../src/deepseek/response';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { TransportError } from '../../src/transport';

const official = {
  id: '88beaa90-17fd-45fc-939c-2ef75e2d913c',
  object: 'chat.completion',
  created: 1793084842,
  model: 'deepseek-flash',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! 👋 How can I help you today?' }, logprobs: null, finish_reason: 'stop' }],
  usage: {
    prompt_tokens: 7,
    completion_tokens: 11,
    total_tokens: 18,
    prompt_tokens_details: { cached_tokens: 0 },
    prompt_cache_hit_tokens: 0,
    prompt_cache_miss_tokens: 7,
  },
  system_fingerprint: 'e72d3c7f663d3e1383b00b3884cb4501',
};

/** What `fn` throws (an `invalid-response` TransportError), as the client reports it. */
function thrown(fn: () => unknown): UpstreamError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).kind).toBe('invalid-response');
    return toGatewayError(error as TransportError) as UpstreamError;
  }
  throw new Error('expected a throw');
}

describe('response mapping', () => {
  it('maps the documented chat.completion example', () => {
    expect(fromWireChatCompletion(official, 'fb3cc7347920593f11e4fe8116dee066')).toEqual({
      model: 'deepseek-flash',
      content: 'Hello! 👋 How can I help you today?',
      reasoningContent: null,
      finishReason: 'stop',
      usage: { promptTokens: 7, completionTokens: 11, totalTokens: 18, cacheHitTokens: 0, cacheMissTokens: 7 },
      createdAt: '2026-10-27T07:07:22.000Z',
      upstreamId: '88beaa90-17fd-45fc-939c-2ef75e2d913c',
      traceId: 'fb3cc7347920593f11e4fe8116dee066',
    });
  });

  it('gives each answer the time of its own created second, and a created no Date can hold the time of reading', () => {
    expect(fromWireChatCompletion({ ...official, created: 1793084843 }, undefined).createdAt).toBe('2026-10-27T07:07:23.000Z');
    expect(fromWireChatCompletion(official, undefined).createdAt).toBe('2026-10-27T07:07:22.000Z');
    expect(fromWireChatCompletion(official, undefined).createdAt).toBe('2026-10-27T07:07:22.000Z');
    const before = Date.now();
    const far = Date.parse(fromWireChatCompletion({ ...official, created: 1e20 }, undefined).createdAt);
    expect(far).toBeGreaterThanOrEqual(before);
    expect(far).toBeLessThanOrEqual(Date.now());
  });

  it('passes finish_reason insufficient_system_resource through on a 200 (the caller must not cache it)', () => {
    const cut = { ...official, choices: [{ ...official.choices[0], finish_reason: 'insufficient_system_resource' }] };
    expect(fromWireChatCompletion(cut, undefined).finishReason).toBe('insufficient_system_resource');
  });

  it('reads reasoning tokens and reasoning content', () => {
    const thinking = {
      ...official,
      choices: [{ index: 0, message: { role: 'assistant', content: 'A', reasoning_content: 'R' }, finish_reason: 'stop' }],
      usage: { ...official.usage, completion_tokens_details: { reasoning_tokens: 5 } },
    };
    const result = fromWireChatCompletion(thinking, undefined);
    expect(result.reasoningContent).toBe('R');
    expect(result.usage.reasoningTokens).toBe(5);
  });

  it('rejects a response without choices as UPSTREAM_UNAVAILABLE', () => {
    const error = thrown(() => fromWireChatCompletion({ ...official, choices: [] }, 't'));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect(error.details).toMatchObject({ retryable: true, traceId: 't' });
  });

  it('rejects a response without usage', () => {
    const { usage: _usage, ...noUsage } = official;
    expect(thrown(() => fromWireChatCompletion(noUsage, undefined)).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
  });

  it('maps a FIM completion from choices[0].text', () => {
    const fim = { ...official, object: 'text_completion', choices: [{ index: 0, text: 'x + y', finish_reason: 'length' }] };
    expect(fromWireFimCompletion(fim, undefined)).toMatchObject({ content: 'x + y', finishReason: 'length', reasoningContent: null });
  });

  it('maps a model list with and without V4 metadata', () => {
    expect(fromWireModelList({ object: 'list', data: [{ id: 'deepseek-chat', object: 'model', owned_by: 'deepseek' }] }, undefined)).toEqual([
      { id: 'deepseek-chat', ownedBy: 'deepseek' },
    ]);
  });

  it('falls back to prompt_tokens_details for cache hits', () => {
    expect(toUsage({ prompt_tokens: 10, completion_tokens: 1, total_tokens: 11, prompt_tokens_details: { cached_tokens: 4 } })).toEqual({
      promptTokens: 10,
      completionTokens: 1,
      totalTokens: 11,
      cacheHitTokens: 4,
      cacheMissTokens: 6,
    });
  });
});

describe('errors inside a 200 body', () => {
  it('classifies an error object sent after keep-alive lines by its type', () => {
    const rejected = thrown(() =>
      fromWireChatCompletion({ error: { message: 'Invalid max_tokens value', type: 'invalid_request_error' } }, 't'),
    );
    expect(rejected.code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect(rejected.details).toMatchObject({ status: 200, upstreamMessage: 'Invalid max_tokens value', retryable: false });
    expect(thrown(() => fromWireChatCompletion({ error: { type: 'server_error' } }, 't'))).toMatchObject({
      code: ErrorCode.UPSTREAM_UNAVAILABLE,
      details: { retryable: true },
    });
  });
});
