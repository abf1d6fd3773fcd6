import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer } from '../cache/redis-server';
import { startService, waitForUrl } from '../helpers/service-process';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const LIMIT = 20;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: Record<string, unknown> | null; errors?: Array<{ extensions?: Record<string, unknown> }> };
}

async function post(url: string, query: string): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Answer['body'] };
}

/**
 * Two gateway processes on one Redis, as two replicas behind a load balancer: the quota
 * counters are shared, so a limit holds for the service, not per process; and a Redis that
 * goes away changes no answer into a 500.
 */
describe('quotas held across replicas (two processes, one Redis)', () => {
  let redis: RedisServer;
  const children: ChildProcessWithoutNullStreams[] = [];
  let urls: string[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'quotas-replicas-'));
    const quotas = join(dir, 'quotas.yaml');
    // AUTH_MODE=none: every request comes from 127.0.0.1, one subject for both replicas.
    writeFileSync(quotas, `default:\n  requestsPerMinute: ${LIMIT}\n`);
    const env = {
      REDIS_URL: redis.url,
      QUOTAS_FILE: quotas,
      QUOTA_REPLICAS: '2',
      // Generous: the first test checks exact shared counting, and a cold process under a
      // burst must not fall back to its local share by timing out (the outage test kills
      // Redis, which fails commands at once).
      QUOTA_REDIS_TIMEOUT_MS: '2000',
      CACHE_STORE_TIMEOUT_MS: '200',
      SIMULATOR_LATENCY_MS: '0',
      // Two processes start at once: no warm-up (its own test is test/e2e/warmup.test.ts).
      WARMUP_OPERATIONS: '0',
    };
    for (let i = 0; i < 2; i += 1) children.push(startService({ ...env, LOG_LEVEL: 'info' }));
    const started = await Promise.all(children.map((child) => waitForUrl(child)));
    urls = started.map((replica) => replica.url);
    // Both replicas count in Redis before the test counts anything: an operation counted
    // before a replica's client connects is counted in its local share (the fallback), and
    // would use up part of that share before the outage the second test makes.
    await waitFor(() => started.every(({ lines }) => lines.some((line) => line.includes('"redis quota counters connected"'))), {
      what: 'both replicas to reach the shared counters',
    });
    // Warm both processes up (the first requests of a cold process are slow), then forget what that counted.
    await Promise.all(urls.flatMap((url) => Array.from({ length: 10 }, () => post(url, '{ __typename }'))));
    await redis.cli('FLUSHALL');
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    await redis.stop();
  });

  it(`a requestsPerMinute of ${LIMIT} admits exactly ${LIMIT} operations across both replicas`, async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => post(urls[i % 2], '{ __typename }')));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(admitted).toHaveLength(LIMIT);
    expect(refused).toHaveLength(50 - LIMIT);
    // Both replicas admitted some: the count is shared, not split.
    expect(new Set(answers.map((a, i) => (a.status === 200 ? i % 2 : -1)).filter((r) => r >= 0)).size).toBe(2);
    for (const answer of refused) {
      expect(answer.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'requestsPerMinute' });
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
    }
  });

  it('with Redis stopped, each replica admits its share (limit / QUOTA_REPLICAS) and answers completions: no 500; it rejoins when Redis is back', async () => {
    await redis.stop();
    const answers: Answer[] = [];
    for (let i = 0; i < 30; i += 1) answers.push(await post(urls[i % 2], `{ completion(input: {prompt: "while redis is down ${i % 3}", thinking: false, maxTokens: 20}) { content } }`));
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
    // ceil(20 / 2) = 10 per replica, counted locally from zero.
    const admittedBy = [0, 1].map((replica) => answers.filter((a, i) => i % 2 === replica && a.status === 200).length);
    expect(admittedBy).toEqual([10, 10]);
    for (const answer of answers.filter((a) => a.status === 200)) expect(answer.body.data?.completion).toMatchObject({ content: expect.any(String) });

    await redis.start();
    // Redis came back empty: the replicas count there again and admit from a fresh window.
    await waitFor(async () => (await post(urls[0], '{ usage { shared } }')).status === 200 && (await post(urls[1], '{ __typename }')).status === 200 && (await redis.cli('DBSIZE')) !== '0', {
      what: 'the replicas to count in Redis again',
      intervalMs: 250,
      timeoutMs: 20_000,
    });
  });
});
