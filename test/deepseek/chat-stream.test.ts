import { ErrorCode, UpstreamError } from '../../src/errors';
import type { ChatRequest, CompletionResult, StreamEvent } from '../../src/deepseek/types';
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

function joined(deltas: StreamEvent[], field: 'content' | 'reasoningContent'): string {
  return deltas.map((d) => (d.type === 'delta' ? d[field] : '')).join('');
}

function wireBody(request: ChatRequest): Record<string, unknown> {
  return {
    model: request.model,
    messages: request.messages,
    ...(request.thinking === undefined ? {} : { thinking: { type: request.thinking ? 'enabled' : 'disabled' } }),
  };
}

describe('chat streaming', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('yields deltas that join to the answer, then a finish with usage', async () => {
    h = await startHarness();
    const request = chatRequest({ thinking: false });

    const { deltas, result } = await collect(h.client.chatStream(request));

    const expected = simulatedAnswer(wireBody(request));
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.every((d) => d.type === 'delta' && (d.content !== '' || d.reasoningContent !== ''))).toBe(true);
    expect(joined(deltas, 'content')).toBe(expected.content);
    expect(result).toMatchObject({ content: expected.content, reasoningContent: null, finishReason: 'stop', model: 'deepseek-flash' });
    expect(result?.usage.completionTokens).toBeGreaterThan(0);
    expect(result?.usage.totalTokens).toBe((result?.usage.promptTokens ?? 0) + (result?.usage.completionTokens ?? 0));
    expect(result?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(h.sim.requests[0].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(h.sim.requests[0].headers.accept).toBe('text/event-stream');
    // The slot is released when the body closes, a tick after the last event.
    await waitFor(() => h.client.status().inFlight === 0);
  });

  it('streams thinking deltas into reasoningContent', async () => {
    h = await startHarness();
    const request = chatRequest({ thinking: true });

    const { deltas, result } = await collect(h.client.chatStream(request));

    const expected = simulatedAnswer(wireBody(request));
    expect(joined(deltas, 'reasoningContent')).toBe(expected.reasoningContent);
    expect(joined(deltas, 'content')).toBe(expected.content);
    expect(result?.reasoningContent).toBe(expected.reasoningContent);
    expect(result?.usage.reasoningTokens).toBeGreaterThan(0);
  });

  it('takes usage from the finish chunk too', async () => {
    h = await startHarness({ sim: { streamUsage: 'on-finish' } });
    const { result } = await collect(h.client.chatStream(chatRequest()));
    expect(result?.usage.completionTokens).toBeGreaterThan(0);
  });

  it('ignores keep-alive comments sent while the request is queued', async () => {
    h = await startHarness({ sim: { latencyMs: 100, keepAliveIntervalMs: 10 } });
    const request = chatRequest();

    const { deltas, result } = await collect(h.client.chatStream(request));

    expect(joined(deltas, 'content')).toBe(simulatedAnswer(wireBody(request)).content);
    expect(result?.content).toBe(simulatedAnswer(wireBody(request)).content);
  });

  it('fails a stream that ends without [DONE] as truncated', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'truncate', afterChunks: 3 });
    const seen: StreamEvent[] = [];

    const { error } = await failureOf(async () => {
      for await (const event of h.client.chatStream(chatRequest())) seen.push(event);
    });

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).message).toMatch(/truncated/);
    expect(seen.some((e) => e.type === 'finish')).toBe(false);
    await waitFor(() => h.client.status().inFlight === 0);
  });

  it('aborts the upstream request when the consumer breaks out of the loop', async () => {
    h = await startHarness({ sim: { tokenDelayMs: 50 } });

    for await (const event of h.client.chatStream(chatRequest())) {
      expect(event.type).toBe('delta');
      break;
    }

    await waitFor(() => h.sim.counters.inFlight === 0);
    await waitFor(() => h.client.status().inFlight === 0);
    expect(h.sim.counters.total).toBe(1);
  });

  it('aborts the upstream request when the caller signal fires mid-stream', async () => {
    h = await startHarness({ sim: { tokenDelayMs: 50 } });
    const controller = new AbortController();

    const { error } = await failureOf(async () => {
      for await (const event of h.client.chatStream(chatRequest(), { signal: controller.signal })) {
        if (event.type === 'delta') controller.abort();
      }
    });

    expect(error).toMatchObject({ name: 'AbortError' });
    await waitFor(() => h.sim.counters.inFlight === 0);
    expect(h.client.status()).toMatchObject({ inFlight: 0, failures: 0 });
  });

  it('caps the whole stream at streamMaxMs even while keep-alive comments keep coming', async () => {
    h = await startHarness({ config: { streamMaxMs: 400 } });
    h.sim.faults.inject({ kind: 'blank-lines', intervalMs: 20 });

    const { error, elapsedMs } = await failureOf(() => collect(h.client.chatStream(chatRequest())));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect((error as UpstreamError).message).toBe("DeepSeek's stream did not finish within 400 ms");
    // Never early (a lower bound only; the exact cut is pinned with fake timers in deadline.test.ts).
    expect(elapsedMs).toBeGreaterThanOrEqual(380);
    await waitFor(() => h.sim.counters.inFlight === 0);
  });

  it('retries establishing the stream after a 503, then streams normally', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 503 });
    const request = chatRequest();

    const { result } = await collect(h.client.chatStream(request));

    expect(result?.content).toBe(simulatedAnswer(wireBody(request)).content);
    expect(h.sim.counters.byStatus).toEqual({ 503: 1, 200: 1 });
  });

  it('reports a rejected stream request as UPSTREAM_REJECTED before any event', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 400, message: 'Invalid max_tokens value' });

    const { error } = await failureOf(() => collect(h.client.chatStream(chatRequest())));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect((error as UpstreamError).details.upstreamMessage).toBe('Invalid max_tokens value');
  });
});
