/**
 * The baseline of bench rows i, j and k (a cache miss) and of `bench:stream`: a bare
 * `node:http` server that forwards each request to the upstream through an undici `Pool`,
 * as thin as a hop can be. It reads the client's JSON body `{ "prompt": … }`, sends
 * DeepSeek's wire body for it (the one the gateway sends for a non-thinking completion) to
 * `POST /chat/completions`, and answers the upstream's JSON as it came. With
 * `{ "prompt": …, "stream": true, "maxTokens": n }` it asks for a stream and passes the
 * upstream's SSE bytes on as they arrive, unparsed. Run as its own child process by
 * bench/bench.ts and bench/stream-latency.ts.
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
      const { prompt, stream, maxTokens } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { prompt: string; stream?: boolean; maxTokens?: number };
      const messages = [{ role: 'user', content: prompt }];
      upstream
        .request({
          method: 'POST',
          path: '/chat/completions',
          headers: { 'content-type': 'application/json', authorization, ...(stream ? { accept: 'text/event-stream' } : {}) },
          body: JSON.stringify(
            stream
              ? { model: 'deepseek-flash', messages, thinking: { type: 'disabled' }, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }
              : { model: 'deepseek-flash', messages, thinking: { type: 'disabled' }, stream: false },
          ),
        })
        .then(async (answer) => {
          if (stream) {
            response.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'text/event-stream') });
            for await (const piece of answer.body) response.write(piece as Buffer);
            response.end();
            return;
          }
          const text = await answer.body.text();
          response.writeHead(answer.statusCode, { 'content-type': 'application/json' });
          response.end(text);
        })
        .catch((error: unknown) => {
          if (response.headersSent) return void response.destroy();
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
