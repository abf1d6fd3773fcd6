import { keyFingerprint } from '../../src/transport/key-pool';
import { BAD_KEY, GOOD_KEY, chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';

type Line = Record<string, unknown>;

function lines(h: Harness): Line[] {
  return h.logs.map((line) => JSON.parse(line) as Line);
}

describe('upstream exchange logging', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('logs one debug line per attempt with path, status, attempt, trace id, duration and key fingerprint', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 503 });

    await h.client.chat(chatRequest());

    const exchanges = lines(h).filter((l) => l.msg === 'upstream exchange');
    expect(exchanges).toHaveLength(2);
    expect(exchanges.map((l) => [l.status, l.attempt, l.error])).toEqual([
      [503, 1, 'UPSTREAM_UNAVAILABLE'],
      [200, 2, undefined],
    ]);
    for (const line of exchanges) {
      expect(line).toMatchObject({ level: 20, method: 'POST', path: '/chat/completions', keyFingerprint: keyFingerprint(GOOD_KEY) });
      expect(line.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(typeof line.durationMs).toBe('number');
    }
    const text = h.logs.join('\n');
    expect(text).not.toContain(GOOD_KEY);
    expect(text).not.toContain('question number');
  });

  it('warns when a key is disabled and when the circuit changes state', async () => {
    h = await startHarness({ config: { apiKeys: [BAD_KEY, GOOD_KEY], breakerThreshold: 1, maxRetries: 0 } });
    await h.client.chat(chatRequest());
    h.sim.faults.inject({ kind: 'status', status: 500 });
    await failureOf(() => h.client.chat(chatRequest()));

    const warnings = lines(h).filter((l) => l.level === 40);
    expect(warnings).toEqual([
      expect.objectContaining({ msg: 'upstream API key disabled', keyFingerprint: keyFingerprint(BAD_KEY), reason: 'unauthorized' }),
      expect.objectContaining({ msg: 'upstream circuit OPEN', circuit: 'OPEN' }),
    ]);
  });
});
