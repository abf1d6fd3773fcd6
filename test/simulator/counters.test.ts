import { Agent } from 'undici';
import { KEY, TRACE_ID, chatBody, useSimulator, waitFor } from './helpers';

describe('simulator counters and recorded requests', () => {
  const { sim, call } = useSimulator();
  beforeEach(() => {
    sim().counters.reset();
    sim().requests.length = 0;
  });

  it('counts requests by path and by status, /v1 paths under their own name', async () => {
    await call('/chat/completions', { body: chatBody('a') });
    await call('/chat/completions', { body: chatBody('b') });
    await call('/v1/chat/completions', { body: chatBody('c') });
    await call('/models');
    await call('/chat/completions', { body: chatBody('d', { model: 'nope' }) });
    await call('/nowhere');
    const { counters } = sim();
    expect(counters.total).toBe(6);
    expect(counters.byPath).toEqual({ '/chat/completions': 3, '/v1/chat/completions': 1, '/models': 1, '/nowhere': 1 });
    expect(counters.byStatus).toEqual({ 200: 4, 400: 1, 404: 1 });
  });

  it('records method, path, headers, parsed body and status, oldest first', async () => {
    await call('/chat/completions?x=1', { body: chatBody('recorded') });
    await call('/models', { key: 'sk-other-key-5678' });
    const [first, second] = sim().requests;
    expect(first).toMatchObject({ method: 'POST', path: '/chat/completions', status: 200, body: chatBody('recorded') });
    expect(first.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(Math.abs(first.at - Date.now())).toBeLessThan(5000);
    expect(second).toMatchObject({ method: 'GET', path: '/models', status: 200, body: undefined });
    expect(second.headers.authorization).toBe('Bearer sk-other-key-5678');
  });

  it('keeps only the last 1000 requests', async () => {
    for (let i = 0; i < 1005; i++) await call('/models');
    expect(sim().requests).toHaveLength(1000);
    expect(sim().counters.total).toBe(1005);
  });

  it('tracks inFlight and maxInFlight across concurrent requests', async () => {
    sim().setOptions({ latencyMs: 300 });
    const pending = Array.from({ length: 5 }, (_, i) => call('/chat/completions', { body: chatBody(`concurrent ${i}`) }));
    await waitFor(() => sim().counters.inFlight === 5);
    const results = await Promise.all(pending);
    expect(results.every((r) => r.status === 200 && TRACE_ID.test(String(r.headers['x-ds-trace-id'])))).toBe(true);
    await waitFor(() => sim().counters.inFlight === 0);
    expect(sim().counters.maxInFlight).toBe(5);
    const traceIds = new Set(results.map((r) => r.headers['x-ds-trace-id']));
    expect(traceIds.size).toBe(5);

    sim().counters.reset();
    expect(sim().counters).toMatchObject({ total: 0, inFlight: 0, maxInFlight: 0, connectionsOpened: 0, byPath: {}, byStatus: {} });
  });

  it('counts connections opened, reused ones once', async () => {
    const agents = [new Agent({ connections: 1 }), new Agent({ connections: 1 })];
    try {
      const get = async (agent: Agent): Promise<void> => {
        const res = await agent.request({ origin: sim().url, path: '/models', method: 'GET', headers: { authorization: `Bearer ${KEY}` } });
        await res.body.text();
      };
      for (let i = 0; i < 3; i++) await get(agents[0]);
      expect(sim().counters.connectionsOpened).toBe(1);
      await get(agents[1]);
      expect(sim().counters.connectionsOpened).toBe(2);
    } finally {
      await Promise.all(agents.map((agent) => agent.close()));
    }
  });
});
