/**
 * The baseline of bench row k (a cache miss under load): a bare `node:http` server that
 * forwards each request to the upstream through an undici `Pool`, as thin as a hop can be.
 * It reads the client's JSON body `{ "prompt": … }`, sends DeepSeek's wire body for it
 * (the one the gateway sends for a non-thinking completion) to `POST /chat/completions`,
 * and answers the upstream's JSON as it came. Run as its own child process by bench/bench.ts.
 *
 * Env: HOST (default 127.0.0.1), PORT (default 0), UPSTREAM_URL (the simulator),
 * UPSTREAM_KEY (its bearer key), UPSTREAM_CONNECTIONS (the pool's size, default 256). Prints one JSON line `{"msg":"bare hop listening","url":…}`.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

async function main(): Promise<void> {
  const upstream = new Pool(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:1', { connections: Number(process.env.UPSTREAM_CONNECTIONS ?? 256) });
  const authorization = `Bearer ${process.env.UPSTREAM_KEY ?? ''}`;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const { prompt } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { prompt: string };
      upstream
        .request({
          method: 'POST',
          path: '/chat/completions',
          headers: { 'content-type': 'application/json', authorization },
          body: JSON.stringify({ model: 'deepseek-flash', messages: [{ role: 'user', content: prompt }], thinking: { type: 'disabled' }, stream: false }),
        })
        .then(async (answer) => {
          const text = await answer.body.text();
          response.writeHead(answer.statusCode, { 'content-type': 'application/json' });
          response.end(text);
        })
        .catch((error: unknown) => {
          response.writeHead(502, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ error: String(error) }));
        });
    });
  });
  server.keepAliveTimeout = 72_000;
  server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ msg: 'bare hop listening', url: `http://127.0.0.1:${port}/` })}\n`);
  });
  const stop = (): void => {
    server.close();
    void upstream.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bare hop failed to start: ${String(error)}\n`);
  process.exit(1);
});
