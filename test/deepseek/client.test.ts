import { createDeepSeekClient } from '../../src/deepseek';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { simulatedAnswer } from '../../src/simulator';
import { silentLogger } from '../../src/telemetry/logger';
import { GOOD_KEY, chatRequest, failureOf, startHarness, type Harness } from './harness';

describe('DeepSeek client', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('sends a chat request in DeepSeek wire format, omitting unset fields', async () => {
    await h.client.chat({
      kind: 'chat',
      model: 'deepseek-flash',
      messages: [
        { role: 'system', content: 'be brief, answer in json' },
        { role: 'user', content: 'hi' },
      ],
      thinking: true,
      reasoningEffort: 'max',
      temperature: 0.5,
      topP: 0.9,
      maxTokens: 300,
      stop: ['END'],
      responseFormat: 'json_object',
    });
    await h.client.chat({ kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content: 'json please' }] });

    const [full, minimal] = h.sim.requests;
    expect(full.method).toBe('POST');
    expect(full.path).toBe('/chat/completions');
    expect(full.headers).toMatchObject({
      authorization: `Bearer ${GOOD_KEY}`,
      'content-type': 'application/json',
      accept: 'application/json',
    });
    expect(full.body).toEqual({
      model: 'deepseek-flash',
      messages: [
        { role: 'system', content: 'be brief, answer in json' },
        { role: 'user', content: 'hi' },
      ],
      thinking: { type: 'enabled' },
      reasoning_effort: 'max',
      temperature: 0.5,
      top_p: 0.9,
      max_tokens: 300,
      stop: ['END'],
      response_format: { type: 'json_object' },
      stream: false,
    });
    expect(minimal.body).toEqual({
      model: 'deepseek-flash',
      messages: [{ role: 'user', content: 'json please' }],
      stream: false,
    });
  });

  it('maps a chat completion to a CompletionResult', async () => {
    const request = chatRequest({ thinking: true });
    const result = await h.client.chat(request);

    const expected = simulatedAnswer(h.sim.requests[0].body as Record<string, unknown>);
    expect(result.content).toBe(expected.content);
    expect(result.reasoningContent).toBe(expected.reasoningContent);
    expect(result.model).toBe('deepseek-flash');
    expect(result.finishReason).toBe('stop');
    expect(result.upstreamId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(Math.abs(Date.parse(result.createdAt) - Date.now())).toBeLessThan(5000);
    expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
    expect(result.usage.cacheHitTokens + result.usage.cacheMissTokens).toBe(result.usage.promptTokens);
    expect(result.usage.reasoningTokens).toBeGreaterThan(0);
  });

  it('gives reasoningContent null when thinking is off', async () => {
    const result = await h.client.chat(chatRequest({ thinking: false }));
    expect(result.reasoningContent).toBeNull();
  });

  it('completes FIM through /beta/completions', async () => {
    const result = await h.client.complete({
      kind: 'fim',
      model: 'deepseek-flash',
      prompt: 'def add(a, b):',
      suffix: '    return c',
      maxTokens: 64,
      temperature: 0.2,
      topP: 0.8,
      stop: ['\n\n'],
    });

    const [request] = h.sim.requests;
    expect(request.path).toBe('/beta/completions');
    expect(request.body).toEqual({
      model: 'deepseek-flash',
      prompt: 'def add(a, b):',
      suffix: '    return c',
      max_tokens: 64,
      temperature: 0.2,
      top_p: 0.8,
      stop: ['\n\n'],
      stream: false,
    });
    expect(result.content).toBe(simulatedAnswer(request.body as Record<string, unknown>).content);
    expect(result.reasoningContent).toBeNull();
  });

  it('dispatches complete() on the request kind', async () => {
    await h.client.complete(chatRequest());
    expect(h.sim.requests[0].path).toBe('/chat/completions');
  });

  it('lists models with their metadata', async () => {
    const models = await h.client.models();

    expect(h.sim.requests[0]).toMatchObject({ method: 'GET', path: '/models' });
    expect(models.map((m) => m.id)).toEqual(expect.arrayContaining(['deepseek-flash', 'deepseek-v4-pro']));
    expect(models.find((m) => m.id === 'deepseek-flash')).toMatchObject({
      ownedBy: 'deepseek',
      contextWindow: 1_048_576,
      maxOutputTokens: 393_216,
      inputModalities: ['text', 'image'],
      reasoningEffortLevels: ['low', 'high', 'max'],
      defaultReasoningEffort: 'high',
    });
  });

  it('reads the balance', async () => {
    const balance = await h.client.balance();

    expect(h.sim.requests[0]).toMatchObject({ method: 'GET', path: '/user/balance' });
    expect(balance.isAvailable).toBe(true);
    expect(balance.balances[0]).toEqual({
      currency: expect.any(String),
      totalBalance: expect.stringMatching(/^\d+\.\d+$/),
      grantedBalance: expect.stringMatching(/^\d+\.\d+$/),
      toppedUpBalance: expect.stringMatching(/^\d+\.\d+$/),
    });
  });

  it('maps a 400 to UPSTREAM_REJECTED with the sanitised message, status and trace id, after 1 attempt', async () => {
    h.sim.faults.inject({ kind: 'status', status: 400, message: 'Model Not Exist' });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect(error).toBeInstanceOf(UpstreamError);
    const upstream = error as UpstreamError;
    expect(upstream.code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect(upstream.message).toBe('DeepSeek rejected the request: Model Not Exist');
    expect(upstream.details).toMatchObject({ status: 400, upstreamMessage: 'Model Not Exist', attempts: 1, retryable: false });
    expect(upstream.details.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(upstream.extensions).toMatchObject({ upstreamStatus: 400, upstreamTraceId: upstream.details.traceId, attempts: 1 });
  });

  it('maps a 422 to UPSTREAM_REJECTED', async () => {
    h.sim.faults.inject({ kind: 'status', status: 422 });
    const { error } = await failureOf(() => h.client.chat(chatRequest()));
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect((error as UpstreamError).details.upstreamMessage).toBe('Invalid Parameters');
  });

  it('maps a real rejection from the simulator (unknown model) to UPSTREAM_REJECTED', async () => {
    const { error } = await failureOf(() => h.client.chat(chatRequest({ model: 'no-such-model' })));
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_REJECTED);
    expect((error as UpstreamError).details.upstreamMessage).toBeTruthy();
  });

  it('maps a 401 to UPSTREAM_AUTH_FAILED and a 402 to UPSTREAM_INSUFFICIENT_BALANCE, neither retried', async () => {
    h.sim.faults.inject({ kind: 'status', status: 401 });
    const auth = await failureOf(() => h.client.chat(chatRequest()));
    await h.close();

    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 402 });
    const balance = await failureOf(() => h.client.chat(chatRequest()));

    expect((auth.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect((auth.error as UpstreamError).details).toMatchObject({ status: 401, attempts: 1, retryable: false });
    expect((auth.error as UpstreamError).details.upstreamMessage).toBeUndefined();
    expect((balance.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
    expect((balance.error as UpstreamError).details).toMatchObject({ status: 402, attempts: 1 });
    expect(h.sim.counters.total).toBe(1);
  });

  it('maps a 429 to UPSTREAM_RATE_LIMITED once retries are spent', async () => {
    h.sim.faults.inject({ kind: 'status', status: 429 }, { count: 3 });
    const { error } = await failureOf(() => h.client.chat(chatRequest()));
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_RATE_LIMITED);
    expect((error as UpstreamError).details).toMatchObject({ status: 429, attempts: 3, retryable: true });
  });

  it('parses a JSON body that follows blank keep-alive lines', async () => {
    h.sim.faults.inject({ kind: 'blank-lines', count: 4, intervalMs: 10 });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBe(simulatedAnswer(h.sim.requests[0].body as Record<string, unknown>).content);
    expect(h.sim.counters.total).toBe(1);
  });

  it('retries a truncated JSON body as UPSTREAM_UNAVAILABLE, never returning raw text', async () => {
    h.sim.faults.inject({ kind: 'truncate' });
    const result = await h.client.chat(chatRequest());
    expect(result.content).toBeTruthy();
    expect(h.sim.counters.total).toBe(2);

    h.sim.faults.inject({ kind: 'truncate' }, { count: 3 });
    const { error } = await failureOf(() => h.client.chat(chatRequest()));
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).message).toBe('DeepSeek sent an unreadable response (not JSON)');
    expect((error as UpstreamError).details.attempts).toBe(3);
  });

  it('uses the path of a base URL that has one', async () => {
    const client = createDeepSeekClient({ config: { ...h.config, baseUrl: `${h.sim.url}/v1/` }, logger: silentLogger() });
    try {
      await client.chat(chatRequest());
      expect(h.sim.requests[0].path).toBe('/v1/chat/completions');
    } finally {
      await client.close();
    }
  });
});
