import type { Meter } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { httpServerMetrics } from '../telemetry/metrics';

export const METRICS_PATH = '/metrics';

/**
 * `GET /metrics`: the Prometheus exposition of every instrument (see `metrics.ts`), served
 * by the metrics server on its own port (`metrics-server.ts`). Without a meter provider
 * (`OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none`) it answers 404 saying so.
 */
export function registerMetricsRoute(app: FastifyInstance, scrape: (() => Promise<string>) | undefined): void {
  app.get(METRICS_PATH, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    if (!scrape) {
      return reply.code(404).type('text/plain; charset=utf-8').send('# metrics are off (OTEL_SDK_DISABLED or OTEL_METRICS_EXPORTER=none)\n');
    }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await scrape());
  });
}

/**
 * Records `http.server.request.duration` for every request Fastify answers (GraphQL,
 * health, metrics, 404s) but those `skip` names. Register before the routes.
 */
export function registerHttpServerMetrics(app: FastifyInstance, meter: Meter, skip?: (request: FastifyRequest) => boolean): void {
  const recorder = httpServerMetrics(meter);
  app.addHook('onResponse', (request, reply, done) => {
    // The in-process warm-up's requests are not traffic.
    if (skip?.(request)) {
      done();
      return;
    }
    recorder.request({
      method: request.method,
      route: request.routeOptions.url,
      status: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
    });
    done();
  });
}
