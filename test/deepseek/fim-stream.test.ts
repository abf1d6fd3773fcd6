import { ErrorCode, UpstreamError } from '../../src/errors';
import type { CompletionResult, FimRequest, StreamEvent } from '../../src/deepseek/types';
import { simulatedAnswer } from '../../src/simulator';
import { chatRequest, failureOf, startHarness, waitFor, type Harness } from './harness';

async function collect(stream: AsyncIterable<StreamEvent>): Promise<{ deltas: StreamEvent[]; result?: CompletionResult }> {
  const deltas: StreamEvent[] = [];
  let result: CompletionResult | undefined;
  for await (const event of stream) {
    if (event.type === 'finish') result = event.result;
    else deltas.push(event);
  }
  return { deltas, result };
}

const text = (deltas: StreamEvent[]): string => deltas.map((d) => (d.type === 'delta' ? d.content : '')).join('');

let counter = 0;

/** A distinct FIM request each call. */
function fimRequest(overrides: Partial<FimRequest> = {}): FimRequest {
  counter += 1;
  return { kind: 'fim', model: 'deepseek-flash', prompt: `def step_${counter}(n):\n    `, suffix: '\n    return n', maxTokens: 64, ...overrides };
}

describe('FIM streaming', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('streams text deltas that join to the answer the non-streamed FIM gives for the same request', async () => {
    h = await startHarness();
    const request = fimRequest({ temperature: 0.2, stop: ['\n\n'] });

    const { deltas, result } = await collect(h.client.fimStream(request));
    const plain = await h.client.fim(request);

    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.every((d) => d.type === 'delta' && d.content !== '' && d.reasoningContent === '')).toBe(true);
    expect(text(deltas)).toBe(plain.content);
    expect(result).toMatchObject({ content: plain.content, reasoningContent: null, finishReason: 'stop', model: 'deepseek-flash' });
    // Usage comes from the last chunk before [DONE].
    expect(result?.usage.completionTokens).toBe(plain.usage.completionTokens);
    expect(result?.usage.totalTokens).toBe((result?.usage.promptTokens ?? 0) + (result?.usage.completionTokens ?? 0));
    expect(result?.upstreamId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result?.traceId).toMatch(/^[0-9a-f]{32}$/);

    const [streamed] = h.sim.requests;
    expect(streamed.path).toBe('/beta/completions');
    expect(streamed.headers.accept).toBe('text/event-stream');
    expect(streamed.body).toEqual({
      model: 'deepseek-flash',
      prompt: request.prompt,
      suffix: request.suffix,
      max_tokens: 64,
      temperature: 0.2,
      stop: ['\n\n'],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(text(deltas)).toBe(simulatedAnswer(streamed.body as Record<string, unknown>).content);
    await waitFor(() => h.client.status().inFlight === 0);
  });

  it('reports a cut at max_tokens as finish reason length', async () => {
    h = await startHarness();
    const { deltas, result } = await collect(h.client.fimStream(fimRequest({ maxTokens: 2 })));
    expect(text(deltas)).toBe('simulated deepseek-flash');
    expect(result).toMatchObject({ content: 'simulated deepseek-flash', finishReason: 'length', usage: { completionTokens: 2 } });
  });

  it('ignores keep-alive comments sent while the request is queued', async () => {
    h = await startHarness({ sim: { latencyMs: 100, keepAliveIntervalMs: 10 } });
    const request = fimRequest();
    const { deltas, result } = await collect(h.client.fimStream(request));
    expect(text(deltas)).toBe(result?.content);
    expect(result?.content).toBe(simulatedAnswer(h.sim.requests[0].body as Record<string, unknown>).content);
  });

  it('fails a FIM stream that ends without [DONE] as truncated, after the deltas it got', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'truncate', afterChunks: 2 }, { path: '/beta/completions' });
    const seen: StreamEvent[] = [];

    const { error } = await failureOf(async () => {
      for await (const event of h.client.fimStream(fimRequest())) seen.push(event);
    });

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).message).toMatch(/truncated/);
    expect(seen).toHaveLength(2);
    expect(seen.some((e) => e.type === 'finish')).toBe(false);
    await waitFor(() => h.client.status().inFlight === 0);
  });

  it('aborts the upstream request when the consumer breaks out of the loop', async () => {
    h = await startHarness({ sim: { tokenDelayMs: 50 } });
    for await (const event of h.client.fimStream(fimRequest())) {
      expect(event.type).toBe('delta');
      break;
    }
    await waitFor(() => h.sim.counters.inFlight === 0);
    await waitFor(() => h.client.status().inFlight === 0);
    expect(h.sim.counters.total).toBe(1);
  });

  it('reports a rejected FIM stream as UPSTREAM_REJECTED before any event', async () => {
    h = await startHarness();
    const { error } = await failureOf(() => collect(h.client.fimStream(fimRequest({ model: 'deepseek-coder' }))));
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect(h.sim.counters.byStatus).toEqual({ 400: 1 });
  });

  it('completeStream dispatches on the request kind', async () => {
    h = await startHarness();
    const fim = await collect(h.client.completeStream(fimRequest()));
    const chat = await collect(h.client.completeStream(chatRequest()));

    expect(h.sim.requests.map((r) => r.path)).toEqual(['/beta/completions', '/chat/completions']);
    expect(fim.result?.content).toBe(simulatedAnswer(h.sim.requests[0].body as Record<string, unknown>).content);
    expect(chat.result?.content).toBe(simulatedAnswer(h.sim.requests[1].body as Record<string, unknown>).content);
    expect(text(fim.deltas)).toBe(fim.result?.content);
    expect(text(chat.deltas)).toBe(chat.result?.content);
  });
});
