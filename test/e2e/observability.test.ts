import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import type { RequestCost } from '../../src/telemetry/ledger';
import { silentLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { gql, type GraphQLResponse } from '../helpers/gateway';
import { scrape, sumOf, type Sample } from '../telemetry/prometheus';

/**
 * Traces, metrics and per-response cost figures of the whole service, with the SDK wired
 * as at start-up but spans kept in memory. One telemetry per file: the API's globals are
 * per process (per jest file).
 */

interface Usage {
  promptTokens: number;
  completionTokens: number;
  cacheHitTokens: number;
  cacheMissTokens: number;
}
interface Answer {
  completion: { id: string; cached: boolean; usage: Usage };
}

const ASK = `query Ask($input: CompletionInput!) { completion(input: $input) { id cached usage { promptTokens completionTokens cacheHitTokens cacheMissTokens } } }`;

let counter = 0;
/** A fresh W3C trace context per call. */
function traceparent(): { header: string; traceId: string; parentId: string } {
  counter += 1;
  const traceId = `${Date.now().toString(16).padStart(16, '0')}${counter.toString(16).padStart(16, '0')}`;
  const parentId = counter.toString(16).padStart(16, 'a');
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(read: () => T | undefined, timeoutMs = 2000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('observability of the whole service', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let gateway: Gateway;

  beforeAll(async () => {
    // A batch window, so loads of concurrent requests land in one coalescer batch.
    const config = testConfig({ SIMULATOR_LATENCY_MS: '0', SIMULATOR_TOKEN_DELAY_MS: '0', BATCH_WINDOW_MS: '50', DEEPSEEK_RETRY_BASE_MS: '5', DEEPSEEK_RETRY_MAX_MS: '20' });
    telemetry = startTelemetry(config.telemetry, { spanExporter: exporter });
    gateway = await startGateway(config, silentLogger(), { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });
  beforeEach(() => {
    gateway.simulator!.faults.clear();
    gateway.simulator!.setOptions({ latencyMs: 0 });
  });

  const ask = (prompt: string, options: { traceparent?: string; operation?: string; cache?: string } = {}) =>
    gql<Answer>(gateway, options.operation ? ASK.replace('query Ask', `query ${options.operation}`) : ASK, { input: { prompt, thinking: false, ...(options.cache ? { cache: options.cache } : {}) } }, {
      headers: options.traceparent ? { traceparent: options.traceparent } : {},
    });

  const spansOf = (traceId: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
  const one = (spans: ReadableSpan[], name: string): ReadableSpan => {
    const found = spans.filter((span) => span.name === name);
    expect(found.map((span) => span.name)).toEqual([name]);
    return found[0];
  };
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const idOf = (span: ReadableSpan) => span.spanContext().spanId;

  describe('traces', () => {
    it('an uncached query: operation → batch → cache + upstream call → attempt, in the caller trace, and on to DeepSeek', async () => {
      const caller = traceparent();
      const res = await ask('trace me, uncached', { traceparent: caller.header, operation: 'Uncached' });
      expect(res.data!.completion.cached).toBe(false);

      const spans = await eventually(() => {
        const found = spansOf(caller.traceId);
        return found.some((span) => span.name === 'query Uncached') && found.some((span) => span.name === 'coalescer batch') ? found : undefined;
      });
      const operation = one(spans, 'query Uncached');
      const batch = one(spans, 'coalescer batch');
      const read = one(spans, 'cache getMany');
      const write = one(spans, 'cache setMany');
      const call = one(spans, 'upstream POST /chat/completions');
      const attempt = one(spans, 'POST /chat/completions');

      expect(parentOf(operation)).toBe(caller.parentId);
      expect(operation.attributes).toMatchObject({ 'graphql.operation.name': 'Uncached', 'graphql.operation.type': 'query' });
      expect(parentOf(batch)).toBe(idOf(operation));
      expect(batch.attributes).toMatchObject({ 'coalescer.batch_size': 1, 'coalescer.cache_hits': 0, 'coalescer.upstream_calls': 1 });
      expect(parentOf(read)).toBe(idOf(batch));
      expect(read.attributes).toMatchObject({ 'cache.hits': 0, 'cache.keys': 1 });
      expect(parentOf(write)).toBe(idOf(batch));
      expect(parentOf(call)).toBe(idOf(batch));
      expect(parentOf(attempt)).toBe(idOf(call));

      const usage = res.data!.completion.usage;
      expect(call.attributes).toMatchObject({
        'gen_ai.system': 'deepseek',
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'deepseek-flash',
        'gen_ai.response.model': 'deepseek-flash',
        'gen_ai.usage.input_tokens': usage.promptTokens,
        'gen_ai.usage.output_tokens': usage.completionTokens,
        'upstream.attempts': 1,
      });
      const sent = gateway.simulator!.requests.at(-1)!;
      expect(attempt.attributes).toMatchObject({
        'http.request.method': 'POST',
        'url.full': `${gateway.simulator!.url}/chat/completions`,
        'http.response.status_code': 200,
        'upstream.attempt': 1,
      });
      expect(attempt.attributes['upstream.trace_id']).toMatch(/^[0-9a-f]{32}$/);
      expect(call.attributes['upstream.trace_id']).toBe(attempt.attributes['upstream.trace_id']);
      // The W3C header DeepSeek got continues the caller's trace, from the attempt span.
      expect(sent.headers.traceparent).toBe(`00-${caller.traceId}-${idOf(attempt)}-01`);
    });

    it('models and balance: their upstream calls are children of the operation span', async () => {
      const caller = traceparent();
      const res = await gql(gateway, 'query Account { models { id } balance { isAvailable } }', undefined, {
        headers: { traceparent: caller.header },
      });
      expect(res.errors).toBeUndefined();
      const spans = await eventually(() => {
        const found = spansOf(caller.traceId);
        return found.filter((span) => span.name.startsWith('upstream GET')).length === 2 ? found : undefined;
      });
      const operation = one(spans, 'query Account');
      for (const name of ['upstream GET /models', 'upstream GET /user/balance']) {
        expect(parentOf(one(spans, name))).toBe(idOf(operation));
      }
    });

    it('a cached query: operation → batch → cache read with a hit, and no upstream span', async () => {
      await ask('trace me, cached');
      const caller = traceparent();
      const res = await ask('trace me, cached', { traceparent: caller.header, operation: 'Cached' });
      expect(res.data!.completion.cached).toBe(true);

      const spans = await eventually(() => {
        const found = spansOf(caller.traceId);
        return found.some((span) => span.name === 'query Cached') && found.some((span) => span.name === 'coalescer batch') ? found : undefined;
      });
      const operation = one(spans, 'query Cached');
      const batch = one(spans, 'coalescer batch');
      const read = one(spans, 'cache getMany');
      expect(parentOf(batch)).toBe(idOf(operation));
      expect(parentOf(read)).toBe(idOf(batch));
      expect(batch.attributes).toMatchObject({ 'coalescer.cache_hits': 1, 'coalescer.upstream_calls': 0 });
      expect(read.attributes).toMatchObject({ 'cache.hits': 1 });
      expect(spans.map((span) => span.name).filter((name) => name.includes('/chat/completions'))).toEqual([]);
    });

    it('requests batched together still call DeepSeek in their own traces, and the batch links them', async () => {
      const callers = [traceparent(), traceparent()];
      const prompts = ['batched, first', 'batched, second'];
      const before = gateway.simulator!.requests.length;
      await Promise.all(callers.map((caller, i) => ask(prompts[i], { traceparent: caller.header })));

      const sent = gateway.simulator!.requests.slice(before);
      expect(sent).toHaveLength(2);
      for (const [i, prompt] of prompts.entries()) {
        const request = sent.find((r) => JSON.stringify(r.body).includes(prompt))!;
        expect(String(request.headers.traceparent).split('-')[1]).toBe(callers[i].traceId);
      }
      const batches = exporter.getFinishedSpans().filter((span) => span.name === 'coalescer batch' && callers.some((c) => c.traceId === span.spanContext().traceId));
      expect(batches).toHaveLength(1); // one batch for both requests
      const other = callers.find((c) => c.traceId !== batches[0].spanContext().traceId)!;
      expect(batches[0].links.map((link) => link.context.traceId)).toEqual([other.traceId]);
    });

    it('a retried call: one attempt span per attempt, the second naming the retry reason', async () => {
      gateway.simulator!.faults.inject({ kind: 'status', status: 503 });
      const caller = traceparent();
      const res = await ask('retry me', { traceparent: caller.header });
      expect(res.errors).toBeUndefined();
      const spans = await eventually(() => {
        const found = spansOf(caller.traceId).filter((span) => span.name === 'POST /chat/completions');
        return found.length === 2 ? found : undefined;
      });
      const [first, second] = [...spans].sort((a, b) => Number(a.attributes['upstream.attempt']) - Number(b.attributes['upstream.attempt']));
      expect(first.attributes).toMatchObject({ 'upstream.attempt': 1, 'http.response.status_code': 503, 'error.type': 'UPSTREAM_UNAVAILABLE' });
      expect(first.status.code).toBe(SpanStatusCode.ERROR);
      expect(second.attributes).toMatchObject({ 'upstream.attempt': 2, 'upstream.retry_reason': 'UPSTREAM_UNAVAILABLE', 'http.response.status_code': 200 });
      expect(one(spansOf(caller.traceId), 'upstream POST /chat/completions').attributes['upstream.attempts']).toBe(2);
    });

    it('a failed operation: its span has error status and the error codes', async () => {
      const caller = traceparent();
      const res = await gql(gateway, 'query Invalid { completion(input: {prompt: "x", temperature: 9}) { id } }', undefined, {
        headers: { traceparent: caller.header },
      });
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      const operation = await eventually(() => spansOf(caller.traceId).find((span) => span.name === 'query Invalid'));
      expect(operation.status.code).toBe(SpanStatusCode.ERROR);
      expect(operation.attributes['graphql.error.codes']).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('metrics at /metrics', () => {
    const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}) =>
      sumOf(after, name, labels) - sumOf(before, name, labels);

    it('count requests, tokens, cost, cache hits, batches and upstream calls of known traffic', async () => {
      const before = await scrape(gateway.metricsUrl);
      const answers: Array<GraphQLResponse<Answer>> = [];
      for (const prompt of ['metered one', 'metered two', 'metered one']) answers.push(await ask(prompt, { operation: 'Metered' }));
      const after = await scrape(gateway.metricsUrl);

      const fresh = answers.map((a) => a.data!.completion).filter((c) => !c.cached);
      expect(fresh).toHaveLength(2);
      const total = (key: keyof Usage) => fresh.reduce((sum, c) => sum + c.usage[key], 0);

      expect(sumOf(after, 'graphql_server_requests_total', { graphql_operation_name: 'Metered', graphql_operation_type: 'query', outcome: 'ok' })).toBe(3);
      expect(sumOf(after, 'graphql_server_operation_duration_count', { graphql_operation_name: 'Metered' })).toBe(3);
      expect(delta(before, after, 'http_server_request_duration_count', { http_route: '/graphql', http_response_status_code: '200' })).toBe(3);

      expect(delta(before, after, 'gateway_upstream_tokens_total', { token_type: 'prompt', gen_ai_response_model: 'deepseek-flash' })).toBe(total('promptTokens'));
      expect(delta(before, after, 'gateway_upstream_tokens_total', { token_type: 'completion' })).toBe(total('completionTokens'));
      expect(delta(before, after, 'gateway_upstream_tokens_total', { token_type: 'cache_hit' })).toBe(total('cacheHitTokens'));
      expect(delta(before, after, 'gateway_upstream_tokens_total', { token_type: 'cache_miss' })).toBe(total('cacheMissTokens'));
      expect(delta(before, after, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(total('promptTokens'));
      expect(delta(before, after, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' })).toBe(total('completionTokens'));
      expect(delta(before, after, 'gateway_upstream_cost_usd_total', { gen_ai_response_model: 'deepseek-flash' })).toBeGreaterThan(0);

      expect(delta(before, after, 'gateway_upstream_call_duration_count', { url_path: '/chat/completions', outcome: 'ok' })).toBe(2);
      expect(delta(before, after, 'http_client_request_duration_count', { http_response_status_code: '200' })).toBe(2);
      expect(delta(before, after, 'gateway_cache_hits_total')).toBe(1);
      expect(delta(before, after, 'gateway_cache_misses_total')).toBe(2);
      expect(delta(before, after, 'gateway_coalescer_upstream_calls_total')).toBe(2);
      expect(delta(before, after, 'gateway_coalescer_batch_size_count')).toBe(3);
      expect(delta(before, after, 'gateway_upstream_calls_total')).toBe(2);
      expect(sumOf(after, 'gateway_upstream_circuit_state')).toBe(0);
      expect(sumOf(after, 'gateway_upstream_in_flight')).toBe(0);
      expect(sumOf(after, 'gateway_upstream_queued')).toBe(0);
    });

    it('report the request-byte budget: bytes held and refusals, both 0 at rest', async () => {
      await ask('bytes held while answered', { operation: 'Held' });
      const after = await scrape(gateway.metricsUrl);
      const series = (name: string) => after.filter((sample) => sample.name === name);
      expect(series('gateway_http_body_in_flight').map((sample) => sample.value)).toEqual([0]);
      expect(series('gateway_http_body_refusals_total').map((sample) => sample.value)).toEqual([0]);
    });

    it('count errors by code, retries and attempts by status', async () => {
      gateway.simulator!.faults.inject({ kind: 'status', status: 503 }, { count: 3 });
      const before = await scrape(gateway.metricsUrl);
      const res = await ask('always failing', { operation: 'Failing' });
      expect(res.errors?.[0].extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
      const after = await scrape(gateway.metricsUrl);

      expect(sumOf(after, 'graphql_server_requests_total', { graphql_operation_name: 'Failing', outcome: 'error' })).toBe(1);
      expect(sumOf(after, 'graphql_server_errors_total', { graphql_operation_name: 'Failing', error_type: 'UPSTREAM_UNAVAILABLE' })).toBe(1);
      expect(delta(before, after, 'gateway_upstream_retries_total')).toBe(2);
      expect(delta(before, after, 'http_client_request_duration_count', { http_response_status_code: '503', error_type: 'UPSTREAM_UNAVAILABLE' })).toBe(3);
      expect(delta(before, after, 'gateway_upstream_call_duration_count', { outcome: 'UPSTREAM_UNAVAILABLE' })).toBe(1);
      expect(delta(before, after, 'gateway_upstream_failures_total')).toBe(1);
    });
  });

  describe('extensions.cost', () => {
    const costOf = (res: GraphQLResponse<unknown>) => res.extensions?.cost as RequestCost;

    it('a miss: one upstream call, time spent waiting on DeepSeek, an estimated cost', async () => {
      gateway.simulator!.setOptions({ latencyMs: 50 });
      const cost = costOf(await ask('cost of a miss'));
      expect(cost).toMatchObject({ upstreamCalls: 1, cacheHits: 0, joinedInFlight: 0 });
      expect(cost.upstreamMs).toBeGreaterThanOrEqual(45);
      expect(cost.totalMs).toBeGreaterThanOrEqual(cost.upstreamMs);
      expect(cost.overheadMs).toBeCloseTo(cost.totalMs - cost.upstreamMs, 0);
      expect(cost.estimatedCostUsd).toBeGreaterThan(0);
    });

    it('a hit: no upstream call and no upstream wait', async () => {
      await ask('cost of a hit');
      const cost = costOf(await ask('cost of a hit'));
      expect(cost).toMatchObject({ upstreamCalls: 0, cacheHits: 1, joinedInFlight: 0, upstreamMs: 0, estimatedCostUsd: 0 });
      expect(cost.overheadMs).toBe(cost.totalMs);
    });

    it('a joined call: the second request rides on the first one\u2019s call and pays nothing', async () => {
      gateway.simulator!.setOptions({ latencyMs: 300 });
      const first = ask('cost of a joined call');
      await eventually(() => (gateway.simulator!.counters.inFlight > 0 ? true : undefined));
      const second = ask('cost of a joined call');
      const [a, b] = [costOf(await first), costOf(await second)];
      expect(a).toMatchObject({ upstreamCalls: 1, joinedInFlight: 0, cacheHits: 0 });
      expect(b).toMatchObject({ upstreamCalls: 0, joinedInFlight: 1, cacheHits: 0, estimatedCostUsd: 0 });
      expect(b.upstreamMs).toBeGreaterThan(0);
      expect(b.upstreamMs).toBeLessThan(a.upstreamMs);
    });

    it('duplicates inside one operation cost one call', async () => {
      const res = await gql(gateway, '{ completions(inputs: [{prompt: "dup", thinking: false}, {prompt: "dup", thinking: false}]) { id } }');
      expect(costOf(res)).toMatchObject({ upstreamCalls: 1, cacheHits: 0, joinedInFlight: 0 });
    });
  });
});
