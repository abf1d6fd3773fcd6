import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { CSRF_PREVENTION_HEADERS } from './csrf';

/**
 * CORS with an allow-list (`CORS_ORIGINS`; none by default in production, any outside
 * it): only listed origins may read answers from a browser. Preflights allow what the
 * GraphQL transports need: JSON bodies, the bearer token, trace context, and the
 * CSRF-prevention headers. CORS is not an access control (the token is); it keeps other
 * sites' pages from reading answers with a user's credentials or network position.
 */
export async function registerCors(app: FastifyInstance, origins: '*' | string[]): Promise<void> {
  await app.register(cors, {
    origin: origins === '*' ? true : origins.length === 0 ? false : origins,
    methods: ['GET', 'POST'],
    allowedHeaders: ['content-type', 'authorization', 'traceparent', 'tracestate', 'accept', ...CSRF_PREVENTION_HEADERS],
    // A browser may cache a preflight for 10 minutes.
    maxAge: 600,
    strictPreflight: true,
  });
}
