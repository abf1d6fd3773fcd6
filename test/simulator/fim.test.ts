import { simulatedAnswer } from '../../src/simulator';
import { UUID, sseData, useSimulator } from './helpers';

interface FimChunk {
  id: string;
  object: string;
  model: string;
  choices: Array<{ text: string; index: number; logprobs: null; finish_reason: string | null }>;
  usage?: Record<string, number> | null;
}

const fimBody = (extra: Record<string, unknown> = {}) => ({
  model: 'deepseek-flash',
  prompt: 'def fib(n):\n    ',
  suffix: '\n    return a',
  max_tokens: 128,
  ...extra,
});

describe('simulator POST /beta/completions (FIM)', () => {
  const { sim, call } = useSimulator();

  it('answers in the text_completion shape with deterministic text', async () => {
    const body = fimBody();
    const res = await call('/beta/completions', { body });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.text) as Record<string, unknown> & { choices: FimChunk['choices']; usage: Record<string, number> };
    expect(Object.keys(json)).toEqual(['id', 'object', 'created', 'model', 'system_fingerprint', 'choices', 'usage']);
    expect(json.id).toMatch(UUID);
    expect(json.object).toBe('text_completion');
    expect(json.choices).toEqual([{ text: simulatedAnswer(body).content, index: 0, logprobs: null, finish_reason: 'stop' }]);
    expect(json.choices[0].text).toContain('after "def fib(n):"');
    expect(json.choices[0].text).toContain('before "return a"');
    expect(simulatedAnswer(body).reasoningContent).toBeNull();
    expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + json.usage.completion_tokens);
    expect(json.usage.completion_tokens).toBe(json.choices[0].text.split(' ').length);
  });

  it('echoes the prompt in front of the completion when echo is set', async () => {
    const body = { model: 'deepseek-v4-pro', prompt: 'Once upon a time', echo: true };
    const json = JSON.parse((await call('/beta/completions', { body })).text) as { model: string; choices: Array<{ text: string }> };
    expect(json.model).toBe('deepseek-v4-pro');
    expect(json.choices[0].text.startsWith('Once upon a timesimulated deepseek-v4-pro fill-in')).toBe(true);
  });

  it('streams text chunks and ends with a usage-carrying finish chunk, then [DONE]', async () => {
    const body = fimBody({ stream: true, stream_options: { include_usage: true } });
    const res = await call('/beta/completions', { body });
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const data = sseData(res.text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as FimChunk);
    expect(chunks.every((c) => c.object === 'text_completion' && c.id === chunks[0].id)).toBe(true);
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(simulatedAnswer(body).content);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }]);
    expect(last.usage).toMatchObject({ completion_tokens: chunks.length - 1 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null && c.choices[0].finish_reason === null)).toBe(true);
  });

  it('carries usage on the last chunk even without include_usage', async () => {
    const res = await call('/beta/completions', { body: fimBody({ stream: true }) });
    const chunks = sseData(res.text).slice(0, -1).map((d) => JSON.parse(d) as FimChunk);
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: expect.any(Number) as number });
    expect(chunks.slice(0, -1).every((c) => !('usage' in c))).toBe(true);
  });

  it('sends keep-alive comments while queued and ends a truncated stream without its finish chunk or [DONE]', async () => {
    sim().setOptions({ latencyMs: 60, keepAliveIntervalMs: 15 });
    sim().faults.inject({ kind: 'truncate', afterChunks: 2 }, { path: '/beta/completions' });
    const res = await call('/beta/completions', { body: fimBody({ stream: true }) });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^(: keep-alive\n\n)+data: /);
    const data = sseData(res.text);
    expect(data).toHaveLength(2);
    expect(data.map((d) => (JSON.parse(d) as FimChunk).choices[0].finish_reason)).toEqual([null, null]);
  });

  it('cuts at max_tokens with finish_reason length', async () => {
    const json = JSON.parse((await call('/beta/completions', { body: fimBody({ max_tokens: 2 }) })).text) as {
      choices: Array<{ text: string; finish_reason: string }>;
    };
    expect(json.choices[0]).toMatchObject({ text: 'simulated deepseek-flash', finish_reason: 'length' });
  });

  it.each([
    ['an array prompt', { prompt: ['a', 'b'] }, 'prompt'],
    ['thinking enabled', { thinking: { type: 'enabled' } }, 'thinking'],
    ['stream_options without stream', { stream_options: { include_usage: true } }, 'stream_options'],
    ['echo with suffix', { echo: true }, 'echo'],
    ['an unknown model', { model: 'deepseek-coder' }, 'model'],
  ])('rejects %s with 400', async (_name, extra, param) => {
    const res = await call('/beta/completions', { body: fimBody(extra) });
    expect(res.status).toBe(400);
    expect((JSON.parse(res.text) as { error: { param: string } }).error.param).toBe(param);
  });
});
