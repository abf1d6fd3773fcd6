import { simulatedAnswer } from '../../src/simulator';
import { TRACE_ID, UUID, chatBody, useSimulator } from './helpers';

interface ChatResponse {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: Array<{ index: number; message: Record<string, unknown>; logprobs: null; finish_reason: string }>;
  usage: Record<string, unknown> & {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    prompt_cache_hit_tokens: number;
    prompt_cache_miss_tokens: number;
  };
  system_fingerprint: string;
}

describe('simulator POST /chat/completions', () => {
  const { call } = useSimulator();
  const ask = async (body: Record<string, unknown>, path = '/chat/completions') => {
    const res = await call(path, { body });
    expect(res.status).toBe(200);
    return { res, json: JSON.parse(res.text) as ChatResponse };
  };

  it('answers in the documented chat.completion shape', async () => {
    const { res, json } = await ask(chatBody('Hello shape'));
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-ds-trace-id']).toMatch(TRACE_ID);
    expect(Object.keys(json)).toEqual(['id', 'object', 'created', 'model', 'choices', 'usage', 'system_fingerprint']);
    expect(json.id).toMatch(UUID);
    expect(json.object).toBe('chat.completion');
    expect(Math.abs(json.created - Date.now() / 1000)).toBeLessThan(5);
    expect(json.model).toBe('deepseek-flash');
    expect(json.system_fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(json.choices).toHaveLength(1);
    const choice = json.choices[0];
    expect(choice).toMatchObject({ index: 0, logprobs: null, finish_reason: 'stop' });
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toMatch(/^Simulated deepseek-flash answer [0-9a-f]{8}: you said "Hello shape"/);
  });

  it('reports usage that adds up, with reasoning tokens in thinking mode', async () => {
    const { json } = await ask(chatBody('usage check'));
    const u = json.usage;
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    expect(u.prompt_tokens).toBe(Math.ceil('usage check'.length * 0.3));
    expect(u.prompt_tokens).toBe(u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens);
    expect(u.prompt_tokens_details).toEqual({ cached_tokens: u.prompt_cache_hit_tokens });
    const reasoning = (u.completion_tokens_details as { reasoning_tokens: number }).reasoning_tokens;
    const content = json.choices[0].message.content as string;
    expect(u.completion_tokens).toBe(reasoning + content.split(' ').length);

    const off = await ask(chatBody('usage check', { thinking: { type: 'disabled' } }));
    expect(off.json.usage).not.toHaveProperty('completion_tokens_details');
  });

  it('hits the context cache in 64-token units on a repeated long prompt', async () => {
    const long = 'cache me '.repeat(60); // 540 chars -> 162 prompt tokens
    const first = await ask(chatBody(long));
    expect(first.json.usage.prompt_cache_hit_tokens).toBe(0);
    const second = await ask(chatBody(long));
    expect(second.json.usage.prompt_cache_hit_tokens).toBe(128);
    expect(second.json.usage.prompt_cache_miss_tokens).toBe(162 - 128);
  });

  it('gives the same content for the same body, and simulatedAnswer predicts it', async () => {
    const body = chatBody('Deterministic please', { temperature: 0.5 });
    const a = await ask(body);
    const b = await ask(body);
    expect(a.json.choices[0].message.content).toBe(b.json.choices[0].message.content);
    expect(a.json.id).not.toBe(b.json.id);
    const expected = simulatedAnswer(body);
    expect(a.json.choices[0].message.content).toBe(expected.content);
    expect(a.json.choices[0].message.reasoning_content).toBe(expected.reasoningContent);

    const other = await ask(chatBody('Deterministic please', { temperature: 0.6 }));
    expect(other.json.choices[0].message.content).not.toBe(expected.content);
  });

  it('includes reasoning_content only when thinking is enabled (the default)', async () => {
    const byDefault = await ask(chatBody('think?'));
    expect(byDefault.json.choices[0].message.reasoning_content).toMatch(/^Simulated reasoning [0-9a-f]{8} at high effort/);
    const enabled = await ask(chatBody('think?', { thinking: { type: 'enabled' }, reasoning_effort: 'ultra' }));
    expect(enabled.json.choices[0].message.reasoning_content).toMatch(/at max effort/);
    const disabled = await ask(chatBody('think?', { thinking: { type: 'disabled' } }));
    expect(disabled.json.choices[0].message).not.toHaveProperty('reasoning_content');
    expect(simulatedAnswer(chatBody('think?', { thinking: { type: 'disabled' } })).reasoningContent).toBeNull();
  });

  it('cuts the answer at max_tokens with finish_reason length', async () => {
    const { json } = await ask(chatBody('a long question indeed', { max_tokens: 3, thinking: { type: 'disabled' } }));
    const content = json.choices[0].message.content as string;
    expect(content.split(' ')).toHaveLength(3);
    expect(json.choices[0].finish_reason).toBe('length');
    expect(json.usage.completion_tokens).toBe(3);
  });

  it('cuts the answer before a stop string with finish_reason stop', async () => {
    const { json } = await ask(chatBody('the word MARKER is here', { stop: ['MARKER', 'never-there'] }));
    const content = json.choices[0].message.content as string;
    expect(content).toMatch(/you said "the word $/);
    expect(json.choices[0].finish_reason).toBe('stop');
  });

  it('returns a JSON object string in json_object mode', async () => {
    const body = chatBody('Reply in json please', { response_format: { type: 'json_object' } });
    const { json } = await ask(body);
    const parsed = JSON.parse(json.choices[0].message.content as string) as Record<string, unknown>;
    expect(parsed).toMatchObject({ model: 'deepseek-flash' });
    expect(parsed.answer).toContain('Reply in json please');
  });

  it('serves legacy deepseek-v4-flash as deepseek-flash, on /v1 and /beta too', async () => {
    const legacy = await ask(chatBody('legacy', { model: 'deepseek-v4-flash' }), '/v1/chat/completions');
    expect(legacy.json.model).toBe('deepseek-flash');
    expect(legacy.json.choices[0].message.content).toBe(simulatedAnswer(chatBody('legacy')).content);
    const pro = await ask(chatBody('pro', { model: 'deepseek-v4-pro' }), '/beta/chat/completions');
    expect(pro.json.model).toBe('deepseek-v4-pro');
  });

  it('accepts an explicit stream:false, null optional fields and text parts', async () => {
    const body = {
      model: 'deepseek-flash',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'parts work' }] },
      ],
      stream: false,
      temperature: null,
      stop: null,
    };
    const { json } = await ask(body);
    expect(json.choices[0].message.content).toContain('you said "parts work"');
  });
});
