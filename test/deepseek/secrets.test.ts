import type { StreamEvent } from '../../src/deepseek/types';
import { BAD_KEY, GOOD_KEY, chatRequest, exposedText, failureOf, startHarness, type Harness } from './harness';

/** The key must not appear anywhere a client, a log or a trace could see it. */
describe('API keys never leak', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('keeps keys out of every error, the status and the logs across failure kinds', async () => {
    h = await startHarness({
      sim: { apiKeys: [GOOD_KEY] },
      config: { apiKeys: [BAD_KEY, GOOD_KEY], timeoutMs: 300, maxRetries: 1, breakerMinCalls: 100 },
    });
    const errors: unknown[] = [];
    const fail = async (run: () => Promise<unknown>): Promise<void> => {
      errors.push((await failureOf(run)).error);
    };

    // A 400 whose message echoes the key verbatim (DeepSeek's own 401 echoes its suffix).
    h.sim.faults.inject({ kind: 'status', status: 400, message: `bad request for ${GOOD_KEY} (${BAD_KEY.slice(-4)})` });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'status', status: 401 }, { count: 1 });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'status', status: 402 });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'reset' }, { count: 2 });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'hang' });
    await fail(() => h.client.chat(chatRequest()));
    h.sim.faults.inject({ kind: 'truncate', afterChunks: 2 });
    await fail(async () => {
      const events: StreamEvent[] = [];
      for await (const event of h.client.chatStream(chatRequest())) events.push(event);
    });

    expect(errors).toHaveLength(7);
    const text = [...errors.map(exposedText), JSON.stringify(h.client.status()), ...h.logs].join('\n');
    for (const key of [GOOD_KEY, BAD_KEY]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(-6));
    }
    expect(h.logs.some((line) => line.includes('"msg":"upstream exchange"'))).toBe(true);
  });

  it('keeps the key out of the upstream message of a rejection', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 422, message: `key ${GOOD_KEY} cannot do that` });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect(exposedText(error)).not.toContain(GOOD_KEY);
    expect((error as { details: { upstreamMessage?: string } }).details.upstreamMessage).toBe('key [redacted] cannot do that');
  });
});
