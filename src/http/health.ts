import type { FastifyInstance } from 'fastify';

export interface Readiness {
  ready: boolean;
  /** Why not ready, for operators (never secrets). */
  reason?: string;
}

/**
 * `/healthz`: the process is alive and serving HTTP. `/readyz`: it should get traffic
 * (started, not draining, upstream circuit not open). Load balancers poll both often, so
 * neither makes an upstream call.
 */
export function registerHealthRoutes(app: FastifyInstance, readiness: () => Readiness): void {
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const state = readiness();
    return reply
      .code(state.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(state.ready ? { status: 'ready' } : { status: 'unavailable', reason: state.reason });
  });
}
