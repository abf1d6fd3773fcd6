import { once } from 'node:events';
import { PROCESS_TEST_TIMEOUT_MS, startService, waitForUrl } from '../helpers/service-process';

jest.setTimeout(PROCESS_TEST_TIMEOUT_MS);

describe('the service process', () => {
  it('starts with `npm start` on the simulator without a key, says so loudly, and drains when npm gets SIGTERM, exit 0', async () => {
    const child = startService({ SIMULATOR_LATENCY_MS: '600', LOG_LEVEL: 'info' }, 'npm');
    try {
      const { url, lines } = await waitForUrl(child);
      const warning = lines.map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => l.level === 'warn');
      expect(warning?.msg).toMatch(/SIMULATOR/);

      const pending = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ completion(input: {prompt: "drain me"}) { content } }' }),
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      child.kill('SIGTERM');
      const response = await pending;
      expect(response.status).toBe(200);
      const body = (await response.json()) as { data: { completion: { content: string } } };
      expect(body.data.completion.content).toMatch(/Simulated/);
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
      // No orphan left behind: nothing listens on the gateway's port any more.
      await expect(fetch(`${new URL(url).origin}/healthz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  // One real process proves the exit path (code 1, the message on stderr); every variable's
  // message is checked in-process by test/config/config.test.ts.
  it('refuses to start with a bad variable, names it, and exits 1', async () => {
    const child = startService({ PORT: 'eighty' });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: expected an integer port from 0 to 65535/);
  });
});
