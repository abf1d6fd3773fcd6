import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parsePrometheus, sumOf } from './prometheus';
import { PROCESS_TEST_TIMEOUT_MS, START_TIMEOUT_MS } from '../helpers/service-process';

jest.setTimeout(PROCESS_TEST_TIMEOUT_MS);

/**
 * The configuration the benchmark compares, on the real process (`npm start`'s command):
 * OTLP export to a local sink versus OTEL_SDK_DISABLED=true.
 */

const ROOT = join(__dirname, '..', '..');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

interface Sink {
  url: string;
  posts: Array<{ path: string; contentType: string | undefined; body: string }>;
  close(): Promise<void>;
}

/** A local OTLP/HTTP collector stand-in: keeps every POST, answers 200 {}. */
async function startSink(): Promise<Sink> {
  const posts: Sink['posts'] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method === 'POST') {
        posts.push({ path: request.url ?? '', contentType: request.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, posts, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function startService(env: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', SIMULATOR_LATENCY_MS: '0', ...env },
  });
}

/** Resolves with the base URL and the metrics URL from the 'gateway listening' line. */
async function listening(child: ChildProcessWithoutNullStreams): Promise<{ baseUrl: string; metricsUrl: string }> {
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start: ${buffer}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)\/graphql","metricsUrl":"(http:\/\/[^"]+)"[^\n]*"msg":"gateway listening"/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve({ baseUrl: match[1]!, metricsUrl: match[2]! });
      }
    });
    child.once('exit', (code) => reject(new Error(`service exited with ${code}: ${buffer}`)));
  });
}

async function ask(baseUrl: string): Promise<Response> {
  return fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: TRACEPARENT },
    body: JSON.stringify({ query: 'query Traced { completion(input: {prompt: "otlp check", thinking: false}) { id } }' }),
  });
}

describe('the service process with OTEL_* variables', () => {
  let sink: Sink;
  beforeEach(async () => {
    sink = await startSink();
  });
  afterEach(async () => {
    await sink.close();
  });

  it('POSTs its spans as OTLP/HTTP JSON to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces, continuing the caller trace', async () => {
    const child = startService({ OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'gw-process-test' });
    try {
      const { baseUrl, metricsUrl } = await listening(child);
      expect((await ask(baseUrl)).status).toBe(200);
      const metrics = parsePrometheus(await (await fetch(metricsUrl)).text());
      expect(sumOf(metrics, 'graphql_server_requests_total', { graphql_operation_name: 'Traced' })).toBe(1);

      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);

      const traces = sink.posts.filter((post) => post.path === '/v1/traces');
      expect(traces.length).toBeGreaterThanOrEqual(1);
      expect(traces[0].contentType).toBe('application/json');
      const body = traces.map((post) => post.body).join('\n');
      for (const name of ['query Traced', 'coalescer batch', 'cache getMany', 'upstream POST /chat/completions', 'POST /chat/completions']) {
        expect(body).toContain(`"name":"${name}"`);
      }
      expect(body).toContain(TRACE_ID);
      expect(body).toContain('gw-process-test');
      expect(body).not.toContain('otlp check'); // the prompt
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('with OTEL_SDK_DISABLED=true exports nothing and serves no metrics, endpoint or not', async () => {
    const child = startService({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: sink.url });
    try {
      const { baseUrl, metricsUrl } = await listening(child);
      expect((await ask(baseUrl)).status).toBe(200);
      expect((await fetch(metricsUrl)).status).toBe(404);
      // Never on the public GraphQL port.
      expect((await fetch(`${baseUrl}/metrics`)).status).toBe(404);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(sink.posts).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
