import { normaliseCompletionInput, normaliseFimInput } from '../../src/graphql/input/completion-input';

const DEFAULT_MODEL = 'deepseek-flash';

describe('normaliseCompletionInput', () => {
  it('turns prompt + system into messages, with thinking on and HIGH effort by default', () => {
    expect(normaliseCompletionInput({ prompt: 'Hi', system: 'Be kind' }, DEFAULT_MODEL)).toEqual({
      policy: 'USE',
      request: {
        kind: 'chat',
        model: 'deepseek-flash',
        thinking: true,
        reasoningEffort: 'high',
        messages: [
          { role: 'system', content: 'Be kind' },
          { role: 'user', content: 'Hi' },
        ],
      },
    });
  });

  it('drops temperature in thinking mode, where DeepSeek ignores it, and keeps it otherwise', () => {
    const thinking = normaliseCompletionInput({ prompt: 'x', temperature: 0.2 }, DEFAULT_MODEL).request;
    expect(thinking.temperature).toBeUndefined();
    const plain = normaliseCompletionInput({ prompt: 'x', temperature: 0.2, thinking: false }, DEFAULT_MODEL).request;
    expect(plain.temperature).toBe(0.2);
    expect(plain.reasoningEffort).toBeUndefined();
  });

  it('maps legacy aliases to the model DeepSeek serves them as', () => {
    expect(normaliseCompletionInput({ prompt: 'x', model: 'deepseek-v4-flash' }, DEFAULT_MODEL).request.model).toBe(
      'deepseek-flash',
    );
  });

  it('drops an empty stop list and a TEXT response format (the defaults)', () => {
    const { request } = normaliseCompletionInput(
      { prompt: 'x', stop: [], responseFormat: 'TEXT', cache: 'REFRESH' },
      DEFAULT_MODEL,
    );
    expect(request).not.toHaveProperty('stop');
    expect(request).not.toHaveProperty('responseFormat');
  });

  it('keeps the cache policy out of the request', () => {
    const normalised = normaliseCompletionInput({ prompt: 'x', cache: 'BYPASS' }, DEFAULT_MODEL);
    expect(normalised.policy).toBe('BYPASS');
    expect(JSON.stringify(normalised.request)).not.toContain('BYPASS');
  });

  it('prefixes error fields with the given path', () => {
    expect(() => normaliseCompletionInput({ prompt: 'x', topP: 2 }, DEFAULT_MODEL, 'inputs[4]')).toThrow(
      expect.objectContaining({ extensions: { field: 'inputs[4].topP' } }),
    );
  });
});

describe('normaliseFimInput', () => {
  it('builds a FIM request and drops an empty suffix', () => {
    expect(normaliseFimInput({ prompt: 'def f():', suffix: '', maxTokens: 10 }, DEFAULT_MODEL)).toEqual({
      policy: 'USE',
      request: { kind: 'fim', model: 'deepseek-flash', prompt: 'def f():', maxTokens: 10 },
    });
  });
});
