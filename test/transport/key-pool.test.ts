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

  it('fails with the last refusal when every key is refused; later calls go to the least recently refused key', async () => {
    const last = statusError(401);
    const { keys, next, dispatch, later } = pooled([BAD_KEY, SPARE_KEY], statusError(401), last, statusError(402), statusError(401), okResponse());

    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toBe(last);
    later(10);
    // No key is usable: one request, to the key refused longest ago, and its own answer.
    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toMatchObject({ kind: 'status', status: 402 });
    later(10);
    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toMatchObject({ kind: 'status', status: 401 });
    later(10);
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');

    expect(next.requests.map((r) => r.key?.fingerprint)).toEqual([BAD_KEY, SPARE_KEY, BAD_KEY, SPARE_KEY, BAD_KEY].map(keyFingerprint));
    expect(keys.snapshot()).toEqual([
      { fingerprint: keyFingerprint(BAD_KEY), state: 'active' },
      { fingerprint: keyFingerprint(SPARE_KEY), state: 'disabled', reason: 'unauthorized' },
    ]);
  });

  it('tries at most one refused key per attempt: a refusal there ends the attempt with that answer', async () => {
    const { next, dispatch, later } = pooled([BAD_KEY, SPARE_KEY, GOOD_KEY], statusError(401), statusError(401), statusError(401), statusError(402));
    await rejectionOf(dispatch(upstreamRequest(), textHandler())); // all three refused, in order
    later(10);

    expect(await rejectionOf(dispatch(upstreamRequest(), textHandler()))).toMatchObject({ status: 402 });

    expect(next.requests.slice(3).map((r) => r.key?.fingerprint)).toEqual([keyFingerprint(BAD_KEY)]);
  });

  it('goes on to the least recently refused key when the last usable key is refused mid-attempt', async () => {
    const { keys, next, dispatch, later } = pooled([BAD_KEY, GOOD_KEY], statusError(401), okResponse(), statusError(401), okResponse());
    await dispatch(upstreamRequest(), textHandler()); // BAD refused, GOOD answers
    later(10);

    // GOOD is refused now; BAD, refused longer ago, gets its chance in the same attempt.
    await expect(dispatch(upstreamRequest(), textHandler())).resolves.toBe('{"ok":true}');

    expect(next.requests.map((r) => r.key?.fingerprint)).toEqual([BAD_KEY, GOOD_KEY, GOOD_KEY, BAD_KEY].map(keyFingerprint));
    expect(keys.snapshot().map((k) => k.state)).toEqual(['active', 'disabled']);
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

  it('fails with UPSTREAM_AUTH_FAILED when every key is refused, then with the answer for the least recently refused key', async () => {
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
    expect((again.error as UpstreamError).details).toMatchObject({ status: 401, attempts: 1 });
    expect(h.sim.counters.total).toBe(3);
    expect(authOf(h)[2]).toBe(`Bearer ${BAD_KEY}`);
  });

  it('fails with UPSTREAM_INSUFFICIENT_BALANCE when the last key left answered 402', async () => {
    h = await startHarness({ sim: { exhaustedKeys: [GOOD_KEY] } });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
    expect((error as UpstreamError).details.status).toBe(402);
    const again = await failureOf(() => h.client.chat(chatRequest()));
    expect((again.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE);
    expect(h.sim.counters.total).toBe(2);
  });

  it('fingerprints as key_ + 8 hex characters of sha256, never showing the key', () => {
    const fingerprint = keyFingerprint(GOOD_KEY);
    expect(fingerprint).toMatch(/^key_[0-9a-f]{8}$/);
    const pool = new KeyPool([GOOD_KEY]);
    expect(JSON.stringify(pool.pick()!.key)).toBe(JSON.stringify({ fingerprint, state: 'active' }));
    expect(pool.scrub(`echo ${GOOD_KEY} back`)).toBe('echo [redacted] back');
  });

  it('refuses to start without a key', () => {
    expect(() => createDeepSeekClient({ config: testSettings({ apiKeys: [] }), logger: silentLogger() })).toThrow(/API key/);
  });

  it('reports a lone key driven through 401, 402, 400, 422 and 200 as each answer, with a request every time', async () => {
    h = await startHarness({ config: { maxRetries: 0 } });
    const keyState = () => h.client.status().keys[0];

    const codes: string[] = [];
    for (const status of [401, 402, 400, 422]) {
      h.sim.faults.inject({ kind: 'status', status });
      const { error } = await failureOf(() => h.client.chat(chatRequest()));
      codes.push((error as UpstreamError).code);
      expect((error as UpstreamError).details.status).toBe(status);
      if (status === 401) expect(keyState()).toMatchObject({ state: 'disabled', reason: 'unauthorized' });
      if (status === 402) expect(keyState()).toMatchObject({ state: 'disabled', reason: 'insufficient_balance' });
    }
    expect(codes).toEqual([
      ErrorCode.UPSTREAM_AUTH_FAILED,
      ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE,
      ErrorCode.UPSTREAM_REJECTED,
      ErrorCode.UPSTREAM_REJECTED,
    ]);
    // A rejection says nothing about the key: still refused for its balance.
    expect(keyState()).toMatchObject({ state: 'disabled', reason: 'insufficient_balance' });

    const answer = await h.client.chat(chatRequest());

    expect(answer.content).toBeTruthy();
    expect(h.sim.counters.total).toBe(5);
    expect(keyState()).toEqual({ fingerprint: keyFingerprint(GOOD_KEY), state: 'active' });
  });

  it('serves from the usable key while another is refused, and probes the refused one after keyRetryMs', async () => {
    h = await startHarness({ sim: { apiKeys: [GOOD_KEY, SPARE_KEY] }, config: { apiKeys: [GOOD_KEY, SPARE_KEY], maxRetries: 0, keyRetryMs: 200 } });
    h.sim.faults.inject({ kind: 'status', status: 401 });
    await h.client.chat(chatRequest()); // GOOD refused, SPARE answers in the same attempt
    await h.client.chat(chatRequest());
    expect(authOf(h)).toEqual([GOOD_KEY, SPARE_KEY, SPARE_KEY].map((k) => `Bearer ${k}`));
    expect(h.client.status().keys[0]).toMatchObject({ state: 'disabled', reason: 'unauthorized' });

    await new Promise((resolve) => setTimeout(resolve, 250));
    await h.client.chat(chatRequest());
    await h.client.chat(chatRequest());

    // One call probed GOOD (it answers now); round robin over both again.
    expect(authOf(h).slice(3)).toEqual([GOOD_KEY, SPARE_KEY].map((k) => `Bearer ${k}`));
    expect(h.client.status().keys.map((k) => k.state)).toEqual(['active', 'active']);
  });
});

describe('KeyPool probing', () => {
  it('offers a refused key due for a probe to one caller at a time while another key is usable, never when keyRetryMs is 0', () => {
    let now = 1_000;
    const pool = new KeyPool([GOOD_KEY, SPARE_KEY], { retryAfterMs: 500, now: () => now });
    const good = pool.pick()!.key;
    const spare = pool.pick()!.key;
    pool.refused(good, 'insufficient_balance');
    expect(pool.pick()).toEqual({ key: spare, refused: false });
    now += 500;
    expect(pool.pick()).toEqual({ key: good, refused: true });
    expect(pool.pick()).toEqual({ key: spare, refused: false }); // already under probe
    expect(pool.pick(new Set(), false)).toEqual({ key: spare, refused: false }); // this attempt tried a refused key already
    pool.released(good); // the probe ended without a verdict (network failure)
    expect(pool.pick()!.key).toBe(good);
    pool.refused(good, 'insufficient_balance'); // refused again: wait another period
    expect(pool.pick()!.key).toBe(spare);
    now += 500;
    pool.succeeded(pool.pick()!.key);
    expect(pool.snapshot().map((k) => k.state)).toEqual(['active', 'active']);

    const never = new KeyPool([GOOD_KEY, SPARE_KEY], { retryAfterMs: 0, now: () => now });
    const first = never.pick()!.key;
    never.refused(first, 'unauthorized');
    now += 10_000_000;
    expect(never.pick()!.key).not.toBe(first);
  });

  it('with no usable key left, offers the least recently refused one to every caller, and nothing once the attempt tried it', () => {
    let now = 1_000;
    const pool = new KeyPool([GOOD_KEY, SPARE_KEY], { retryAfterMs: 0, now: () => now });
    const [good, spare] = [pool.pick()!.key, pool.pick()!.key];
    pool.refused(spare, 'unauthorized');
    now += 1;
    pool.refused(good, 'insufficient_balance');

    expect(pool.pick()).toEqual({ key: spare, refused: true });
    expect(pool.pick()).toEqual({ key: spare, refused: true }); // not a probe: every caller goes there
    expect(pool.pick(new Set([spare]))).toEqual({ key: good, refused: true });
    expect(pool.pick(new Set([spare]), false)).toBeUndefined();
    now += 1;
    pool.refused(spare, 'unauthorized');
    expect(pool.pick()).toEqual({ key: good, refused: true });
  });
});
