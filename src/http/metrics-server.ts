import Fastify, { type FastifyInstance } from 'fastify';
import { registerMetricsRoute } from './metrics-route';

export interface MetricsServer {
  /** e.g. http://127.0.0.1:9464 (GET /metrics there). */
  url: string;
  close(): Promise<void>;
}

/**
 * `/metrics` on its own port (METRICS_PORT, 9464 as OpenTelemetry's Prometheus exporter
 * uses, bound to METRICS_HOST), never on the public GraphQL port: an ingress or a browser
 * that reaches the API does not reach the operator's figures.
 */
export async function startMetricsServer(options: {
  host: string;
  port: number;
  scrape: (() => Promise<string>) | undefined;
}): Promise<MetricsServer> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true, requestTimeout: 10_000 });
  registerMetricsRoute(app, options.scrape);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => app.close(),
  };
}
