import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { scrape, sumOf } from '../telemetry/prometheus';
import { signTestToken } from '../helpers/tokens';
import { gql, type GraphQLResponse } from '../helpers/gateway';
import { waitFor } from '../helpers/wait';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'deepseek-gateway';
const SECRET = 'an-end-to-end-test-secret-of-at-least-32-bytes';
const ALL_SCOPES = 'completions:read completions:stream completions:write';

const POLICIES = {
  default: { requestsPerMinute: 1000 },
  tenants: {
    rpm: { per: 'tenant', requestsPerMinute: 3 },
    tokens: { tokensPerDay: 400, upstreamCallsPerMinute: 100 },
    dollars: { usdPerDay: 0.0005 },
    streams: { maxConcurrentStreams: 2 },
  },
};

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'quotas-e2e-')), name);
  writeFileSync(path, text);
  return path;
}

function token(sub: string, tenant: string, scope = ALL_SCOPES): Promise<string> {
  return signTestToken({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, sub, tenant, scope });
}

const ASK = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content cached usage { promptTokens completionTokens } } }';
const MANY = 'query Many($inputs: [CompletionInput!]!) { completions(inputs: $inputs) { id } }';
const USAGE = `query Usage($tenant: String, $subject: String) { usage(tenant: $tenant, subject: $subject) {
  tenant subject per limited shared
  requestsPerMinute { limit max used remaining resetsInMs }
  upstreamCallsPerMinute { limit max used remaining }
  tokensPerDay { limit max used remaining resetsInMs }
  usdPerDay { limit max used remaining }
  maxConcurrentStreams { limit max used remaining }
} }`;

interface Figures {
  usage: Record<string, { used: number; max: number; remaining: number; limit: string; resetsInMs?: number | null } | null | string | boolean>;
}

describe('quotas and spend budgets (one gateway, counters in memory)', () => {
  let gateway: Gateway;
  const lines: Array<Record<string, unknown>> = [];
  const clients: Client[] = [];

  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;

  beforeAll(async () => {
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const config = testConfig({
        SIMULATOR_LATENCY_MS: '0',
        SIMULATOR_TOKEN_DELAY_MS: '0',
        AUTH_MODE: 'jwt',
        AUTH_SECRET_FILE: tempFile('secret', SECRET),
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
        QUOTAS_FILE: tempFile('quotas.json', JSON.stringify(POLICIES)),
      });
    telemetry = startTelemetry(config.telemetry, { spanExporter: spans });
    gateway = await startGateway(config, logger, { telemetry });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    gateway.simulator!.setOptions({ tokenDelayMs: 0 });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  const calls = (): number => gateway.simulator!.counters.total;
  const as = async (sub: string, tenant: string, scope?: string) => ({ authorization: `Bearer ${await token(sub, tenant, scope)}` });
  const ask = async (headers: Record<string, string>, input: Record<string, unknown>): Promise<GraphQLResponse> =>
    gql(gateway, ASK, { input }, { headers });
  const usageOf = async (headers: Record<string, string>, variables: Record<string, unknown> = {}) =>
    (await gql<Figures>(gateway, USAGE, variables, { headers })).data!.usage;

  it('a tenant\'s requestsPerMinute admits exactly N operations across its callers; the next is a 429 with Retry-After, without work', async () => {
    const [alice, bob] = [await as('alice', 'rpm'), await as('bob', 'rpm')];
    const statuses = [];
    for (const headers of [alice, bob, alice]) statuses.push((await ask(headers, { prompt: 'rpm', thinking: false, maxTokens: 10 })).status);
    expect(statuses).toEqual([200, 200, 200]);
    const before = calls();
    const refused = await ask(bob, { prompt: 'rpm again', thinking: false, maxTokens: 10 });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'requestsPerMinute' });
    expect(refused.errors![0]!.extensions!.retryAfterMs).toBeGreaterThan((retryAfter - 1) * 1000);
    expect(refused.errors![0]!.extensions).not.toHaveProperty('http');
    expect(calls()).toBe(before);
    // The request log line names the limit.
    const line = lines.filter((l) => l.msg === 'graphql request').at(-1)!;
    expect(line).toMatchObject({ status: 429, tenant: 'rpm', quotaLimits: ['requestsPerMinute'], errorCodes: ['RATE_LIMITED'] });
    // So do the refusal metric (by limit and tenant) and the operation's span.
    const samples = await scrape(gateway.metricsUrl);
    expect(sumOf(samples, 'gateway_quota_refusals_total', { gateway_quota_limit: 'requestsPerMinute', gateway_tenant: 'rpm' })).toBe(1);
    await waitFor(() => spans.getFinishedSpans().some((span) => span.attributes['gateway.quota.limits'] !== undefined));
    const span = spans.getFinishedSpans().find((s) => s.attributes['gateway.quota.limits'] !== undefined)!;
    expect(span.attributes).toMatchObject({ 'gateway.quota.limits': ['requestsPerMinute'], 'gateway.tenant': 'rpm' });
    // Another tenant is not affected.
    expect((await ask(await as('carol', 'other'), { prompt: 'rpm', thinking: false, maxTokens: 10 })).status).toBe(200);
  });

  it('refuses a call whose worst case would cross tokensPerDay before calling, settles an admitted one with its usage, and charges nothing for a cache hit', async () => {
    const headers = await as('dave', 'tokens');
    const before = calls();
    // 1000 output tokens reserved: more than the 400-token day.
    const refused = await ask(headers, { prompt: 'budget', thinking: false, maxTokens: 1000 });
    expect(refused.status).toBe(429);
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', limit: 'tokensPerDay' });
    expect(refused.errors![0]!.message).toMatch(/maxTokens 1000/);
    expect(refused.extensions!.cost).toMatchObject({ upstreamCalls: 0 });
    expect(calls()).toBe(before);
    expect((await usageOf(headers)).tokensPerDay).toMatchObject({ used: 0, max: 400 });

    const admitted = await ask(headers, { prompt: 'budget', thinking: false, maxTokens: 100 });
    expect(admitted.status).toBe(200);
    expect(calls()).toBe(before + 1);
    const { promptTokens, completionTokens } = (admitted.data!.completion as { usage: { promptTokens: number; completionTokens: number } }).usage;
    // The reservation (prompt bound + 100) is corrected to the real usage.
    await waitFor(async () => ((await usageOf(headers)).tokensPerDay as { used: number }).used === promptTokens + completionTokens, {
      what: 'the reservation to be settled',
    });

    const hit = await ask(headers, { prompt: 'budget', thinking: false, maxTokens: 100 });
    expect(hit.data!.completion).toMatchObject({ cached: true });
    const figures = await usageOf(headers);
    expect(figures.tokensPerDay).toMatchObject({ used: promptTokens + completionTokens });
    expect(figures.upstreamCallsPerMinute).toMatchObject({ used: 1 });
    expect(figures).toMatchObject({ tenant: 'tokens', subject: 'dave', per: 'SUBJECT', limited: true, shared: false });
  });

  it('on `completions`, only the items over the budget fail (200, partial data)', async () => {
    const headers = await as('erin', 'tokens');
    const inputs = ['one', 'two', 'three'].map((prompt) => ({ prompt, thinking: false, maxTokens: 150 }));
    const before = calls();
    const res = await gql<{ completions: Array<{ id: string } | null> }>(gateway, MANY, { inputs }, { headers });
    expect(res.status).toBe(200);
    // Each worst case is about 180 tokens: two fit in 400, the third does not.
    expect(res.data!.completions.filter((item) => item !== null)).toHaveLength(2);
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({ extensions: { code: 'BUDGET_EXCEEDED', limit: 'tokensPerDay' } });
    expect(res.errors![0]!.path![0]).toBe('completions');
    expect(calls()).toBe(before + 2);
  });

  it('refuses a call that would cross usdPerDay, priced from the price table', async () => {
    const headers = await as('frank', 'dollars');
    const before = calls();
    // 1000 output tokens at 0.6 $/M (off-peak) or 1.2 $/M (peak) is over $0.0005.
    const refused = await ask(headers, { prompt: 'dear', thinking: false, maxTokens: 1000 });
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'BUDGET_EXCEEDED', limit: 'usdPerDay' });
    expect(calls()).toBe(before);
    expect((await ask(headers, { prompt: 'cheap', thinking: false, maxTokens: 50 })).status).toBe(200);
    expect(calls()).toBe(before + 1);
  });

  function subscribe(authorization: string, variables: Record<string, unknown>) {
    const events: Array<Record<string, unknown>> = [];
    let firstEvent: () => void = () => undefined;
    const first = new Promise<void>((resolve) => {
      firstEvent = resolve;
    });
    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization } });
    clients.push(client);
    const done = new Promise<Array<Record<string, unknown>>>((resolve) => {
      client.subscribe(
        { query: 'subscription S($input: CompletionInput!) { completionStream(input: $input) { delta finishReason } }', variables },
        {
          next: (event) => {
            events.push(event as Record<string, unknown>);
            firstEvent();
          },
          error: (error) => {
            events.push({ error });
            firstEvent();
            resolve(events);
          },
          complete: () => resolve(events),
        },
      );
    });
    return { first, done, close: () => client.dispose() };
  }

  it('caps open streams per caller with maxConcurrentStreams, and gives a slot back when a stream ends', async () => {
    const { authorization } = await as('gina', 'streams');
    gateway.simulator!.setOptions({ tokenDelayMs: 200 });
    const a = subscribe(authorization, { input: { prompt: 'stream a', thinking: false } });
    const b = subscribe(authorization, { input: { prompt: 'stream b', thinking: false } });
    await Promise.all([a.first, b.first]);
    const refused = await subscribe(authorization, { input: { prompt: 'stream c', thinking: false } }).done;
    expect(refused).toHaveLength(1);
    expect((refused[0] as { errors: Array<{ extensions: Record<string, unknown> }> }).errors[0]!.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      limit: 'maxConcurrentStreams',
    });
    await a.close();
    await waitFor(async () => ((await usageOf({ authorization })).maxConcurrentStreams as { used: number }).used === 1, {
      what: 'the closed stream\'s slot to be given back',
    });
    gateway.simulator!.setOptions({ tokenDelayMs: 0 });
    const again = await subscribe(authorization, { input: { prompt: 'stream d', thinking: false } }).done;
    expect(again.at(-1)).toMatchObject({ data: { completionStream: { finishReason: 'STOP' } } });
  });

  it('refuses a stream over a budget before any upstream stream, and settles a finished one with its usage', async () => {
    const { authorization } = await as('hank', 'tokens');
    const before = calls();
    const refused = await subscribe(authorization, { input: { prompt: 'long stream', thinking: false, maxTokens: 5000 } }).done;
    expect((refused[0] as { errors: Array<{ extensions: Record<string, unknown> }> }).errors[0]!.extensions).toMatchObject({
      code: 'BUDGET_EXCEEDED',
      limit: 'tokensPerDay',
    });
    expect(calls()).toBe(before);
    const streamed = await subscribe(authorization, { input: { prompt: 'short stream', thinking: false, maxTokens: 60 } }).done;
    expect(streamed.at(-1)).toMatchObject({ data: { completionStream: { finishReason: expect.any(String) } } });
    expect(calls()).toBe(before + 1);
    const tokens = (): Promise<number> => usageOf({ authorization }).then((u) => (u.tokensPerDay as { used: number }).used);
    await waitFor(async () => (await tokens()) > 0 && (await tokens()) < 60 + 40, { what: 'the stream to be settled below its reservation' });
  });

  it('a QUOTAS_FILE that cannot be used stops start-up, naming it and the field', async () => {
    const bad = tempFile('bad.yaml', 'default:\n  requestsPerMinute: lots\n');
    await expect(startGateway(testConfig({ QUOTAS_FILE: bad }), createLogger('silent'))).rejects.toThrow(
      /QUOTAS_FILE .*bad\.yaml: default\.requestsPerMinute/,
    );
    await expect(startGateway(testConfig({ QUOTAS_FILE: '/nonexistent/quotas.yaml' }), createLogger('silent'))).rejects.toThrow(/cannot be read \(ENOENT\)/);
  });

  it('`usage`: an administrator may ask for any tenant; anyone else only for their own figures', async () => {
    const own = await as('ivan', 'other');
    const forbidden = await gql(gateway, USAGE, { tenant: 'tokens' }, { headers: own });
    expect(forbidden.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    const admin = await as('root', 'ops', `${ALL_SCOPES} gateway:admin`);
    const tenantFigures = await usageOf(admin, { tenant: 'rpm' });
    expect(tenantFigures).toMatchObject({ tenant: 'rpm', subject: null, per: 'TENANT', requestsPerMinute: { max: 3 } });
    const needsSubject = await gql(gateway, USAGE, { tenant: 'tokens' }, { headers: admin });
    expect(needsSubject.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'subject' });
    const subjectFigures = await usageOf(admin, { tenant: 'tokens', subject: 'dave' });
    expect(subjectFigures.tokensPerDay).toMatchObject({ max: 400 });
    expect((subjectFigures.tokensPerDay as { used: number }).used).toBeGreaterThan(0);
    const bad = await gql(gateway, USAGE, { tenant: 'a b' }, { headers: admin });
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tenant' });
    // A client-chosen subject is bounded before it is hashed into a counter key.
    const huge = await gql(gateway, USAGE, { tenant: 'tokens', subject: 'x'.repeat(100_000) }, { headers: admin });
    expect(huge.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'subject' });
    expect(JSON.stringify(huge.errors)).not.toContain('x'.repeat(300));
    const tooLongTenant = await gql(gateway, USAGE, { tenant: 't'.repeat(65) }, { headers: admin });
    expect(tooLongTenant.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tenant' });
    const status = await gql<{ upstream: { quotas: { shared: boolean; circuit: string | null; refusals: Array<{ limit: string; count: number }> } } }>(
      gateway,
      '{ upstream { quotas { shared circuit fallbacks refusals { limit count } } } }',
      {},
      { headers: admin },
    );
    expect(status.data!.upstream.quotas).toMatchObject({ shared: false, circuit: null });
    expect(status.data!.upstream.quotas.refusals).toEqual(
      expect.arrayContaining([
        { limit: 'requestsPerMinute', count: 1 },
        { limit: 'maxConcurrentStreams', count: 1 },
      ]),
    );
  });
});
