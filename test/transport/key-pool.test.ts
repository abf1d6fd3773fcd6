import { ErrorCode, UpstreamError } from '../../src/errors';
import { createDeepSeekClient } from '../../src/deepseek';
import { KeyPool, keyFingerprint, keyPoolInterceptor } from '../../src/transport/key-pool';
import { TransportError } from '../../src/transport/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { BAD_KEY, GOOD_KEY, SPARE_KEY, chatRequest, exposedText, failureOf, startHarness, testSettings, type Harness } from '../deepseek/harness';
import { fakeNext, okResponse, rejectionOf, statusError, textHandler, upstreamRequest, type Step } from './fakes';

describe('key pool policy (fake next)', () => {
  function pooled(secrets: string[], ...steps: Step[]) {
    let now = 0;
    const keys = new KeyPool(secrets, { retryAfterMs: 1000, now: () => now });
    const next = fakeNext(...steps);
    return { keys, next, dispatch: keyPoolInterceptor(keys)(next.dispatch), later: (ms: number) => (now += ms) };
  }

  it("puts the key on the exchange's copy of the request: authorization and fingerprint, never on the original", async () => {
    const { next, dispatch } = pooled([GOOD_KEY], okResponse());
    const request = upstreamRequest();

    await dispatch(request, textHandler());

    expect(next.requests[0].headers).toMatchObject({ authorization: `Bearer ${GOOD_KEY}`, 'content-type': 'application/json' });
    expect(next.requests[0].key).toEqual({ fingerprint: keyFingerprint(GOOD_KEY) });
    expect(request.headers).not.toHaveProperty('authorization');
  });

  it('takes a key refused with 401 or 402 out of rotation and goes on with the next key in the same attempt', async () => {
    const { keys, next, dispatch } = pooled([BAD_KEY, SPARE_KEY, GOOD_KEY], statusError(401), statusError(402), okResponse());

    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');

    expect(next.requests.map((r) => r.key?.fingerprint)).toEqual([BAD_KEY, SPARE_KEY, GOOD_KEY].map(keyFingerprint));
    expect(keys.snapshot().map((k) => k.reason)).toEqual(['unauthorized', 'insufficient_balance', undefined]);
  });

  it('fails with the last refusal when every key is refused, then with no-key and no request', async () => {
    const last = statusError(401);
    const { next, dispatch } = pooled([BAD_KEY, SPARE_KEY], statusError(401), last);

    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toBe(last);
    const error = await rejectionOf(dispatch(upstreamRequest(), textHandler()));

    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'no-key', failure: { reason: 'unauthorized' } });
    expect(next.requests).toHaveLength(2);
  });

  it('keeps a key after any other failure, and lets a probe of a disabled key bring it back', async () => {
    const { keys, next, dispatch, later } = pooled([GOOD_KEY], statusError(503), statusError(402), TransportError.network(new Error('reset')), okResponse());
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));
    expect(keys.snapshot()[0].state).toBe('active');
    await rejectionOf(dispatch(upstreamRequest(), textHandler()));
    expect(keys.snapshot()[0]).toMatchObject({ state: 'disabled', reason: 'insufficient_balance' });

    later(1000);
    await rejectionOf(dispatch(upstreamRequest(), textHandler())); // the probe got no verdict
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');

    expect(next.requests).toHaveLength(4);
    expect(keys.snapshot()[0]).toEqual({ fingerprint: keyFingerprint(GOOD_KEY), state: 'active' });
  });
});

function authOf(h: Harness): string[] {
  return h.sim.requests.map((r) => String(r.headers.authorization));
}

describe('API-key pool against the simulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('disables a key answered with 401 and retries the call with the next key', async () => {
    h = await startHarness({ sim: { apiKeys: [GOOD_KEY] }, config: { apiKeys: [BAD_KEY, GOOD_KEY], maxRetries: 0 } });

    const first = await h.client.chat(chatRequest());
    const second = await h.client.chat(chatRequest());

    expect(first.content).toBeTruthy();
    expect(second.content).toBeTruthy();
    expect(authOf(h)).toEqual([`Bearer ${BAD_KEY}`, `Bearer ${GOOD_KEY}`, `Bearer ${GOOD_KEY}`]);
    const status = h.client.status();
    expect(status.keys).toEqual([
      { fingerprint: keyFingerprint(BAD_KEY), state: 'disabled', reason: 'unauthorized' },
      { fingerprint: keyFingerprint(GOOD_KEY), state: 'active' },
    ]);
    expect(status.retries).toBe(0);
    const json = JSON.stringify(status);
    for (const key of [BAD_KEY, GOOD_KEY]) {
      expect(json).not.toContain(key);
      expect(json).not.toContain(key.slice(-4));
    }
    const logs = h.logs.join('\n');
    expect(logs).toContain(keyFingerprint(BAD_KEY));
    expect(logs).not.toContain(BAD_KEY);
    expect(logs).not.toContain(GOOD_KEY);
  });

  it('spreads calls round-robin over the active keys', async () => {
    h = await startHarness({ sim: { apiKeys: [GOOD_KEY, SPARE_KEY] }, config: { apiKeys: [GOOD_KEY, SPARE_KEY] } });
    for (let i = 0; i < 4; i++) await h.client.chat(chatRequest());
    expect(authOf(h)).toEqual([GOOD_KEY, SPARE_KEY, GOOD_KEY, SPARE_KEY].map((k) => `Bearer ${k}`));
  });

  it('tries the next key after a 402 and marks the first insufficient_balance', async () => {
    h = await startHarness({
      sim: { apiKeys: [GOOD_KEY, SPARE_KEY], exhaustedKeys: [SPARE_KEY] },
      config: { apiKeys: [SPARE_KEY, GOOD_KEY] },
    });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    expect(h.client.status().keys[0]).toEqual({
      fingerprint: keyFingerprint(SPARE_KEY),
      state: 'disabled',
      reason: 'insufficient_balance',
    });
  });

  it('fails with UPSTREAM_AUTH_FAILED when every key is refused, then without a request', async () => {
    h = await startHarness({ sim: { apiKeys: [GOOD_KEY] }, config: { apiKeys: [BAD_KEY, SPARE_KEY] } });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect((error as UpstreamError).details).toMatchObject({ status: 401, attempts: 2, retryable: false });
    expect(h.sim.counters.total).toBe(2);
    for (const key of [BAD_KEY, SPARE_KEY]) {
      expect(exposedText(error)).not.toContain(key);
      expect(exposedText(error)).not.toContain(key.slice(-4));
    }

    const again = await failureOf(() => h.client.chat(chatRequest()));
    expect((again.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect(h.sim.counters.total).toBe(2);
  });

  it('fails with UPSTREAM_INSUFFICIENT_BALANCE when the last key left answered 402', async () => {
    h = await startHarness({ sim: { exhaustedKeys: [GOOD_KEY] } });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
    expect((error as UpstreamError).details.status).toBe(402);
    const again = await failureOf(() => h.client.chat(chatRequest()));
    expect((again.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
  });

  it('fingerprints as key_ + 8 hex characters of sha256, never showing the key', () => {
    const fingerprint = keyFingerprint(GOOD_KEY);
    expect(fingerprint).toMatch(/^key_[0-9a-f]{8}$/);
    const pool = new KeyPool([GOOD_KEY]);
    expect(JSON.stringify(pool.pick())).toBe(JSON.stringify({ fingerprint, state: 'active' }));
    expect(pool.scrub(`echo ${GOOD_KEY} back`)).toBe('echo [redacted] back');
  });

  it('refuses to start without a key', () => {
    expect(() => createDeepSeekClient({ config: testSettings({ apiKeys: [] }), logger: silentLogger() })).toThrow(/API key/);
  });

  it('lets one call probe a disabled key after keyRetryMs and puts it back on success', async () => {
    h = await startHarness({ sim: { apiKeys: [GOOD_KEY] }, config: { apiKeys: [GOOD_KEY], maxRetries: 0, keyRetryMs: 200 } });
    h.sim.faults.inject({ kind: 'status', status: 401 });
    const refused = await failureOf(() => h.client.chat(chatRequest()));
    expect((refused.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect(h.client.status().keys[0]).toMatchObject({ state: 'disabled', reason: 'unauthorized' });

    const sent = h.sim.counters.total;
    const early = await failureOf(() => h.client.chat(chatRequest()));
    expect((early.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_AUTH_FAILED);
    expect(h.sim.counters.total).toBe(sent); // no key to use yet: nothing sent

    await new Promise((resolve) => setTimeout(resolve, 250));
    const answer = await h.client.chat(chatRequest());
    expect(answer.content).toBeTruthy();
    expect(h.client.status().keys[0]).toEqual({ fingerprint: keyFingerprint(GOOD_KEY), state: 'active' });
  });
});

describe('KeyPool probing', () => {
  it('offers a due disabled key to one caller at a time, and never when keyRetryMs is 0', () => {
    let now = 1_000;
    const pool = new KeyPool([GOOD_KEY], { retryAfterMs: 500, now: () => now });
    const key = pool.pick()!;
    pool.disable(key, 'insufficient_balance');
    expect(pool.pick()).toBeUndefined();
    now += 500;
    expect(pool.pick()).toBe(key);
    expect(pool.pick()).toBeUndefined(); // already under probe
    pool.released(key); // the probe ended without a verdict (network failure)
    expect(pool.pick()).toBe(key);
    pool.disable(key, 'insufficient_balance'); // refused again: wait another period
    expect(pool.pick()).toBeUndefined();
    now += 500;
    pool.succeeded(pool.pick()!);
    expect(pool.snapshot()).toEqual([{ fingerprint: keyFingerprint(GOOD_KEY), state: 'active' }]);

    const never = new KeyPool([GOOD_KEY], { retryAfterMs: 0, now: () => now });
    never.disable(never.pick()!, 'unauthorized');
    now += 10_000_000;
    expect(never.pick()).toBeUndefined();
  });
});
