import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Caller } from '../../src/auth';
import { DEFAULT_PRICES } from '../../src/config';
import type { ChatRequest } from '../../src/deepseek/types';
import { ErrorCode, QuotaExceededError } from '../../src/errors';
import { CounterStore, Quotas, addressSubject, parsePolicies, QuotaFileError, type QuotaPolicies } from '../../src/quotas';
import { promptTokensBound, worstCase } from '../../src/quotas/estimate';
import { noopInstruments } from '../../src/telemetry/instruments';
import { silentLogger } from '../../src/telemetry/logger';

// Off-peak (a Sunday), so the figures below use the off-peak rates.
const SUNDAY = Date.UTC(2026, 10, 29, 12, 0, 0);

function quotas(policies: QuotaPolicies, now = () => SUNDAY): Quotas {
  const store = new CounterStore({ replicas: 1, timeoutMs: 250, keyPrefix: 't', openTtlSec: 120, logger: silentLogger(), now });
  return new Quotas({ policies, store, prices: DEFAULT_PRICES, defaultMaxOutputTokens: 1000, meter: noopInstruments().meter, logger: silentLogger() });
}

function caller(subject: string, tenant = 'acme', kind: Caller['kind'] = 'token'): Caller {
  return { kind, subject, tenant, scopes: new Set() };
}

const request = (prompt: string, maxTokens?: number): ChatRequest => ({
  kind: 'chat',
  model: 'deepseek-flash',
  messages: [{ role: 'user', content: prompt }],
  maxTokens,
});

const usage = (promptTokens: number, completionTokens: number) => ({
  promptTokens,
  completionTokens,
  totalTokens: promptTokens + completionTokens,
  cacheHitTokens: 0,
  cacheMissTokens: promptTokens,
});

/** Lets the counter corrections a settle sends (without waiting) land. */
const corrections = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('quota policies', () => {
  it('reads JSON and YAML of the same shape, and the shipped example', () => {
    const json = parsePolicies('{"default":{"requestsPerMinute":5},"tenants":{"acme":{"per":"tenant","usdPerDay":1.5}}}');
    const yaml = parsePolicies('default:\n  requestsPerMinute: 5\ntenants:\n  acme:\n    per: tenant\n    usdPerDay: 1.5\n');
    expect(yaml).toEqual(json);
    expect(json.default).toEqual({ per: 'subject', requestsPerMinute: 5 });
    const example = parsePolicies(readFileSync(join(__dirname, '..', '..', 'docs', 'quotas.example.yaml'), 'utf8'));
    expect(Object.keys(example.tenants)).toEqual(['acme', 'internal-tools']);
  });

  it.each([
    ['an unknown limit', '{"default":{"tokensPerHour":5}}', /default: Unrecognized key/i],
    ['a negative limit', '{"default":{"requestsPerMinute":-1}}', /default.requestsPerMinute/],
    ['a fractional count', '{"default":{"tokensPerDay":1.5}}', /default.tokensPerDay/],
    ['a bad tenant name', '{"tenants":{"a b":{}}}', /tenants/],
    ['YAML aliases (expansion)', 'default: &x {requestsPerMinute: 1}\ntenants: {a: *x}\n', /not JSON or YAML/],
    ['not a document', '{"default":', /not JSON or YAML/],
  ])('refuses %s, naming the file and the field', (_what, text, message) => {
    expect(() => parsePolicies(text, 'q.json')).toThrow(QuotaFileError);
    expect(() => parsePolicies(text, 'q.json')).toThrow(message);
  });
});

describe('quota accounts', () => {
  it('applies the tenant\'s own policy, else the default, else none', () => {
    const q = quotas({ default: { per: 'subject', requestsPerMinute: 1 }, tenants: { acme: { per: 'tenant', requestsPerMinute: 9 } } });
    expect(q.account(caller('u', 'acme'))?.subject).toBeUndefined();
    expect(q.account(caller('u', 'other'))?.subject).toBe('u');
    expect(quotas({ tenants: { acme: { per: 'subject' } } }).account(caller('u', 'other'))).toBeUndefined();
  });

  it('per subject: each caller its own counters; per tenant: one set for the tenant', async () => {
    const q = quotas({ tenants: { solo: { per: 'subject', requestsPerMinute: 1 }, team: { per: 'tenant', requestsPerMinute: 1 } } });
    await q.account(caller('a', 'solo'))!.admitOperation();
    await q.account(caller('b', 'solo'))!.admitOperation();
    await expect(q.account(caller('a', 'solo'))!.admitOperation()).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED, limit: 'requestsPerMinute' });
    await q.account(caller('a', 'team'))!.admitOperation();
    await expect(q.account(caller('b', 'team'))!.admitOperation()).rejects.toBeInstanceOf(QuotaExceededError);
    expect(q.refusals).toEqual({ requestsPerMinute: 2 });
  });

  it('keys counters by a hash: the subject never reaches the store', () => {
    const q = quotas({ default: { per: 'subject', requestsPerMinute: 1 }, tenants: {} });
    const account = q.account(caller('alice@example.com'))!;
    expect(account.key).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(account.key).not.toContain('alice');
  });

  it('reserves the worst case (prompt bytes + output cap), then settles with the real usage', async () => {
    const q = quotas({ default: { per: 'subject', tokensPerDay: 3000 }, tenants: {} });
    const account = q.account(caller('u'))!;
    const ask = request('x'.repeat(100), 500);
    expect(worstCase(ask, DEFAULT_PRICES, 1000, new Date(SUNDAY)).tokens).toBe(promptTokensBound(ask) + 500);
    const hold = await account.reserve(ask);
    const reserved = (await account.usage()).limits[0];
    expect(reserved).toMatchObject({ limit: 'tokensPerDay', max: 3000, used: promptTokensBound(ask) + 500 });
    hold!.settle({ model: 'deepseek-flash', usage: usage(40, 60) });
    await corrections();
    expect((await account.usage()).limits[0]).toMatchObject({ used: 100, remaining: 2900 });
  });

  it('refuses a call whose worst case would cross the budget, and counts nothing for it', async () => {
    const q = quotas({ default: { per: 'subject', tokensPerDay: 1000, upstreamCallsPerMinute: 5 }, tenants: {} });
    const account = q.account(caller('u'))!;
    // Without maxTokens the default output cap (1000 here) is reserved: it cannot fit.
    const refusal = await account.reserve(request('hello')).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(QuotaExceededError);
    expect(refusal).toMatchObject({ code: ErrorCode.BUDGET_EXCEEDED, limit: 'tokensPerDay' });
    expect((refusal as QuotaExceededError).message).toMatch(/default output cap of 1000 tokens/);
    expect((refusal as QuotaExceededError).retryAfterMs).toBe(12 * 3_600_000); // until UTC midnight
    const figures = await account.usage();
    expect(figures.limits.map((l) => [l.limit, l.used])).toEqual([
      ['upstreamCallsPerMinute', 0],
      ['tokensPerDay', 0],
    ]);
    // A smaller maxTokens fits.
    await expect(account.reserve(request('hello', 100))).resolves.toBeDefined();
  });

  it('counts USD in micro-dollars at the period\'s rates, and releases a failed call\'s reservation', async () => {
    const q = quotas({ default: { per: 'subject', usdPerDay: 0.01, usdPerMonth: 1 }, tenants: {} });
    const account = q.account(caller('u'))!;
    const ask = request('x'.repeat(1000), 4000);
    const hold = await account.reserve(ask);
    const worst = worstCase(ask, DEFAULT_PRICES, 1000, new Date(SUNDAY));
    // off-peak deepseek-flash: 0.15 $/M prompt (cache miss), 0.6 $/M output.
    expect(worst.microUsd).toBe(Math.ceil(promptTokensBound(ask) * 0.15 + 4000 * 0.6));
    expect((await account.usage()).limits.find((l) => l.limit === 'usdPerDay')?.used).toBeCloseTo(worst.microUsd / 1e6, 9);
    hold!.release();
    await corrections();
    expect((await account.usage()).limits.every((l) => l.used === 0)).toBe(true);
    // A call cut after 300 bytes of output is charged for them.
    const cut = await account.reserve(ask);
    cut!.release(300);
    await corrections();
    const charged = (await account.usage()).limits.find((l) => l.limit === 'usdPerDay')!.used;
    expect(charged).toBeCloseTo(Math.ceil(promptTokensBound(ask) * 0.15 + 300 * 0.6) / 1e6, 9);
  });

  it('a refused reservation gives back what the other limits counted', async () => {
    const q = quotas({ default: { per: 'subject', upstreamCallsPerMinute: 10, usdPerDay: 0.000001 }, tenants: {} });
    const account = q.account(caller('u'))!;
    await expect(account.reserve(request('hi', 10))).rejects.toMatchObject({ limit: 'usdPerDay', code: ErrorCode.BUDGET_EXCEEDED });
    expect((await account.usage()).limits.find((l) => l.limit === 'upstreamCallsPerMinute')?.used).toBe(0);
  });

  it('holds maxConcurrentStreams open slots and gives each back once', async () => {
    const q = quotas({ default: { per: 'subject', maxConcurrentStreams: 2 }, tenants: {} });
    const account = q.account(caller('u'))!;
    const a = await account.openStream();
    await account.openStream();
    await expect(account.openStream()).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED, limit: 'maxConcurrentStreams' });
    a!.close();
    a!.close();
    await corrections();
    await account.openStream();
    await expect(account.openStream()).rejects.toBeInstanceOf(QuotaExceededError);
  });

  it('counts a caller without a token by address, an IPv6 one by its /64', () => {
    expect(addressSubject('203.0.113.7')).toBe('203.0.113.7');
    expect(addressSubject('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressSubject('2001:db8:0:1:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(addressSubject('2001:db8:0:1::ffff')).toBe('2001:db8:0:1::/64');
    expect(addressSubject('2001:DB8::1')).toBe('2001:db8:0:0::/64');
    expect(addressSubject('::1')).toBe('0:0:0:0::/64');
    const q = quotas({ default: { per: 'subject', requestsPerMinute: 1 }, tenants: {} });
    const one = q.account(caller('2001:db8:0:1::1', 'default', 'anonymous'))!;
    const other = q.account(caller('2001:db8:0:1::2', 'default', 'anonymous'))!;
    expect(one.key).toBe(other.key);
  });
});
