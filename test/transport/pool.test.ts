import { createUpstreamPool } from '../../src/transport/pool';
import { chatRequest, startHarness, type Harness } from '../deepseek/harness';

describe('upstream pool', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('reuses one keep-alive connection for sequential calls', async () => {
    h = await startHarness();
    for (let i = 0; i < 10; i++) {
      await h.client.chat(chatRequest());
      // undici marks the socket idle a turn after the body ended; a call in the same turn
      // would take a second socket (still within maxConcurrency).
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(h.sim.counters.total).toBe(10);
    expect(h.sim.counters.connectionsOpened).toBe(1);
    expect(h.client.status().connections).toBe(1);
  });

  it('splits a base URL into origin and path prefix', async () => {
    const upstream = createUpstreamPool({ baseUrl: 'https://api.deepseek.com/v1/', connections: 2, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 });
    expect(upstream.basePath).toBe('/v1');
    expect(upstream.displayUrl).toBe('https://api.deepseek.com/v1');
    await upstream.pool.close();
  });

  it('refuses a base URL carrying credentials', () => {
    expect(() =>
      createUpstreamPool({ baseUrl: 'https://user:secret@api.deepseek.com', connections: 1, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 }),
    ).toThrow(/credentials/);
  });
});
