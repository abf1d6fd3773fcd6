import type { Gateway } from '../../src/app';
import { gql, startTestGateway } from '../helpers/gateway';

describe('the HTTP surface', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('serves the Apollo Sandbox landing page on GET /graphql for browsers', async () => {
    const res = await fetch(gateway.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toMatch(/sandbox/i);
    // Where Sandbox says it cannot load (offline), it links to the explorer served here.
    expect(html).toMatch(/cannot be loaded[\s\S]*<a href="\/graphiql">/);
  });

  it('serves GraphiQL at /graphiql outside production, every asset from this origin', async () => {
    const res = await fetch(`${gateway.url}/graphiql`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(urls.filter((url) => /^[a-z]+:\/\//i.test(url))).toEqual([]);
    const assets = urls.filter((url) => !url.startsWith('data:'));
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset.startsWith('/graphiql/')).toBe(true);
      const served = await fetch(`${gateway.url}${asset}`);
      expect(served.status).toBe(200);
      // Read it: an unread body keeps its response, and so the server's drain, waiting.
      expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
  });

  it('sends GET / to the landing page', async () => {
    const res = await fetch(`${gateway.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/graphql');
  });

  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('answers a malformed JSON body with a 400 and a JSON GraphQL error', async () => {
    const res = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ upstream { mode } }"',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
    expect(body.errors[0]!.message).toMatch(/not valid JSON/);
  });

  it('keeps CSRF prevention on: a simple GET without a preflight header is refused', async () => {
    const query = encodeURIComponent('{ upstream { mode } }');
    const blocked = await fetch(`${gateway.graphqlUrl}?query=${query}`);
    expect(blocked.status).toBe(400);
    const allowed = await fetch(`${gateway.graphqlUrl}?query=${query}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(allowed.status).toBe(200);
    // toMatchObject: the response also carries extensions.cost.
    expect(await allowed.json()).toMatchObject({ data: { upstream: { mode: 'SIMULATOR' } } });
  });

  it('answers a subscription sent as a plain HTTP request with a typed 400 saying where subscriptions are served', async () => {
    const res = await gql(gateway, 'subscription { completionStream(input: {prompt: "x", thinking: false}) { delta } }');
    expect(res.status).toBe(400);
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.extensions!.code).toBe('BAD_REQUEST');
    expect(res.errors![0]!.message).toMatch(/WebSocket.*\/graphql.*\/graphql\/stream/);
    expect(gateway.simulator!.counters.total).toBe(0);
  });

  it('tells a client that POSTs to /graphql/stream without Accept: text/event-stream what the endpoint expects', async () => {
    const res = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'subscription { completionStream(input: {prompt: "x"}) { delta } }' }),
    });
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
    expect(body.errors[0]!.message).toMatch(/Accept: text\/event-stream/);
    expect(gateway.simulator!.counters.total).toBe(0);
  });

  it('masks unexpected errors and never includes a stack trace', async () => {
    const res = await gql(gateway, '{ completion(input: {prompt: "x", model: "' + 'm'.repeat(100) + '"}) { id } }');
    const text = JSON.stringify(res);
    expect(text).not.toMatch(/stacktrace|at .*\.ts:\d+/);
    expect(res.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin, and no other', async () => {
    const gateway = await startTestGateway({ CORS_ORIGINS: 'https://app.example' });
    try {
      const preflight = (origin: string) =>
        fetch(gateway.graphqlUrl, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
        });
      const allowed = await preflight('https://app.example');
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      const refused = await preflight('https://evil.example');
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      const answer = await fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      // The request is served (CORS is the browser's to enforce), but a browser would not let the page read it.
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await gateway.close();
    }
  });

  it('allows no origin by default in production', async () => {
    const gateway = await startTestGateway({ NODE_ENV: 'production', AUTH_MODE: 'none', DEEPSEEK_API_KEY: 'sk-production-key-0000', WARMUP_OPERATIONS: '0' });
    try {
      const preflight = await fetch(gateway.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await gateway.close();
    }
  });
});

describe('readiness while draining', () => {
  it('cuts an operation still running after SHUTDOWN_GRACE_MS without counting it as an upstream failure', async () => {
    const gateway = await startTestGateway({ SIMULATOR_LATENCY_MS: '5000', SHUTDOWN_GRACE_MS: '200' });
    const inFlight = gql(gateway, '{ completion(input: {prompt: "longer than the grace period"}) { content } }').then(
      () => 'answered',
      () => 'cut',
    );
    while (gateway.simulator!.counters.inFlight === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await gateway.close();
    expect(await inFlight).toBe('cut');
    expect(gateway.services.deepseek.status()).toMatchObject({ failures: 0, circuit: 'CLOSED' });
  });

  it('answers 503 on /readyz once shutdown has begun and finishes in-flight requests', async () => {
    const gateway = await startTestGateway({ SIMULATOR_LATENCY_MS: '400' });
    const inFlight = gql(gateway, '{ completion(input: {prompt: "slow one"}) { content } }');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = gateway.close();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect((answered.data as { completion: { content: string } }).completion.content.length).toBeGreaterThan(0);
    // Answered during the drain: its keep-alive connection is closed with it.
    expect(answered.headers.get('connection')).toBe('close');
    await closing;
    await expect(fetch(`${gateway.url}/healthz`)).rejects.toThrow();
  });
});
