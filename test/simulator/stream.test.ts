import { Agent, request } from 'undici';
import { simulatedAnswer, startSimulator, type Simulator } from '../../src/simulator';
import { waitFor } from '../helpers/wait';
import { KEY, chatBody, sseData, useSimulator } from './helpers';

interface Chunk {
  id: string;
  object: string;
  created: number;
  model: string;
  system_fingerprint: string;
  choices: Array<{ index: number; delta: Record<string, string>; logprobs: null; finish_reason: string | null }>;
  usage?: Record<string, number> | null;
}

const parse = (text: string): { chunks: Chunk[]; done: boolean } => {
  const data = sseData(text);
  const done = data.at(-1) === '[DONE]';
  return { chunks: (done ? data.slice(0, -1) : data).map((d) => JSON.parse(d) as Chunk), done };
};
const joined = (chunks: Chunk[], field: 'content' | 'reasoning_content'): string =>
  chunks.map((c) => c.choices[0]?.delta[field] ?? '').join('');

describe('simulator chat streams (SSE)', () => {
  const { sim, call } = useSimulator();

  it('frames keep-alives, role chunk, deltas, finish, usage chunk and [DONE] exactly', async () => {
    sim().setOptions({ latencyMs: 100, keepAliveIntervalMs: 20 });
    const body = chatBody('Stream me', { stream: true, stream_options: { include_usage: true }, thinking: { type: 'disabled' } });
    const res = await call('/chat/completions', { body });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    // Every event is a keep-alive comment or one data line, each ended by a blank line.
    expect(res.text).toMatch(/^(: keep-alive\n\n)+data: /);
    expect(res.text.endsWith('data: [DONE]\n\n')).toBe(true);
    for (const event of res.text.split('\n\n').slice(0, -1)) expect(event).toMatch(/^(: keep-alive|data: [^\n]+)$/);

    const { chunks, done } = parse(res.text);
    expect(done).toBe(true);
    expect(chunks[0].choices[0]).toEqual({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
    const ids = new Set(chunks.map((c) => `${c.id}|${c.created}|${c.model}|${c.system_fingerprint}|${c.object}`));
    expect(ids.size).toBe(1);
    expect(chunks[0].object).toBe('chat.completion.chunk');
    expect(Object.keys(chunks[0])).toEqual(['id', 'object', 'created', 'model', 'system_fingerprint', 'choices', 'usage']);

    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ prompt_tokens: 3 });
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]).toEqual({ index: 0, delta: { content: '' }, logprobs: null, finish_reason: 'stop' });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.slice(0, -2).every((c) => c.choices[0].finish_reason === null)).toBe(true);

    const content = joined(chunks, 'content');
    expect(content).toBe(simulatedAnswer(body).content);
    expect(chunks.slice(1, -2).every((c) => Object.keys(c.choices[0].delta).join() === 'content')).toBe(true);
    expect(usageChunk.usage!.completion_tokens).toBe(chunks.length - 3);

    const nonStream = await call('/chat/completions', { body: { ...body, stream: false, stream_options: undefined } });
    const json = JSON.parse(nonStream.text) as { choices: Array<{ message: { content: string } }> };
    expect(json.choices[0].message.content).toBe(content);
  });

  it('streams reasoning_content first in thinking mode, then content', async () => {
    const body = chatBody('Think while streaming', { stream: true });
    const res = await call('/chat/completions', { body });
    const { chunks, done } = parse(res.text);
    expect(done).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '', reasoning_content: '' });
    const expected = simulatedAnswer(body);
    expect(joined(chunks, 'reasoning_content')).toBe(expected.reasoningContent);
    expect(joined(chunks, 'content')).toBe(expected.content);
    const firstContent = chunks.findIndex((c) => (c.choices[0]?.delta.content ?? '') !== '');
    const reasoningAt = chunks.map((c, i) => ((c.choices[0]?.delta.reasoning_content ?? '') === '' ? -1 : i));
    const lastReasoning = Math.max(...reasoningAt);
    expect(lastReasoning).toBeLessThan(firstContent);
    // Without include_usage there is no usage key at all.
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
  });

  it('can put usage on the finish chunk instead (streamUsage on-finish)', async () => {
    sim().setOptions({ streamUsage: 'on-finish' });
    const body = chatBody('usage on finish', { stream: true, stream_options: { include_usage: true } });
    const { chunks } = parse((await call('/chat/completions', { body })).text);
    const last = chunks.at(-1)!;
    expect(last.choices[0].finish_reason).toBe('stop');
    expect(last.usage).toMatchObject({ total_tokens: expect.any(Number) as number });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('ends with finish_reason length when max_tokens cuts a stream', async () => {
    const body = chatBody('cut the stream short please', { stream: true, max_tokens: 2, thinking: { type: 'disabled' } });
    const { chunks } = parse((await call('/chat/completions', { body })).text);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('length');
    expect(joined(chunks, 'content')).toBe(simulatedAnswer(body).content);
    expect(chunks).toHaveLength(1 + 2 + 1);
  });

  it('sends blank lines while queued before a non-stream JSON body', async () => {
    sim().setOptions({ latencyMs: 120, keepAliveIntervalMs: 20 });
    const res = await call('/chat/completions', { body: chatBody('queued json') });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    const leading = /^\n+/.exec(res.text)?.[0].length ?? 0;
    expect(leading).toBeGreaterThanOrEqual(1);
    const json = JSON.parse(res.text) as { choices: Array<{ message: { content: string } }> };
    expect(json.choices[0].message.content).toBe(simulatedAnswer(chatBody('queued json')).content);
  });

  it('waits latencyMs silently when keep-alive is off', async () => {
    sim().setOptions({ latencyMs: 80 });
    const started = Date.now();
    const res = await call('/chat/completions', { body: chatBody('slow') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(75); // a lower bound: a loaded machine only waits longer
    expect(res.text.startsWith('{')).toBe(true);
  });
});

describe('a client that leaves mid-stream', () => {
  let sim: Simulator;
  let agent: Agent;
  beforeAll(async () => {
    // Longer than waitFor's deadline: a token timer left running cannot fire (and so drop
    // out of the count) while the test waits for the timers to go.
    sim = await startSimulator({ tokenDelayMs: 60_000 });
    agent = new Agent();
  });
  afterAll(async () => {
    await agent.close();
    await sim.close();
  });

  it('stops the token timer and releases the request', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // The token timer itself, picked out by its delay: the count of live timers alone moves
    // with the agent's own timers, and cannot tell a cleared token timer from a leaked one.
    const setTimer = jest.spyOn(globalThis, 'setTimeout');
    const clearTimer = jest.spyOn(globalThis, 'clearTimeout');
    try {
      // Warm up the agent so its own timers are part of the baseline.
      await (await request(`${sim.url}/models`, { headers: { authorization: `Bearer ${KEY}` }, dispatcher: agent })).body.text();
      const baseline = timers();
      const controller = new AbortController();
      const res = await request(`${sim.url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(chatBody('leave early', { stream: true })),
        dispatcher: agent,
        signal: controller.signal,
      });
      const reader = res.body[Symbol.asyncIterator]();
      await reader.next(); // the role chunk; the next token waits 60 s
      expect(sim.counters.inFlight).toBe(1);
      expect(timers()).toBeGreaterThan(baseline);
      const tokenTimers = setTimer.mock.calls.flatMap((call, i) => (call[1] === 60_000 ? [setTimer.mock.results[i].value as unknown] : []));
      expect(tokenTimers).toHaveLength(1);
      controller.abort();
      await expect(reader.next()).rejects.toThrow();
      await waitFor(() => sim.counters.inFlight === 0);
      expect(clearTimer.mock.calls.some(([timer]) => timer === tokenTimers[0])).toBe(true); // that very timer
      // The agent drops its own socket timers a moment after the abort: wait for the count.
      await waitFor(() => timers() <= baseline, { what: 'the live timers to fall back to the baseline' });
      expect(timers()).toBeLessThanOrEqual(baseline);
      expect(sim.requests.at(-1)!.status).toBe(200);
    } finally {
      setTimer.mockRestore();
      clearTimer.mockRestore();
    }
  });
});
