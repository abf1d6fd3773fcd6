import type { IncomingHttpHeaders } from 'node:http';

/** Content types a browser may send cross-site without a CORS preflight. */
const NON_PREFLIGHTED_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];

/** Headers a cross-site page cannot set without a preflight (Apollo's own choice). */
export const CSRF_PREVENTION_HEADERS = ['x-apollo-operation-name', 'apollo-require-preflight'];

/**
 * Apollo Server's CSRF prevention, for the endpoints Apollo does not serve itself (SSE):
 * a request is let through only if a browser would have had to preflight it, i.e. it has
 * a content type other than the three simple ones, or one of `CSRF_PREVENTION_HEADERS`.
 * Anything else (a simple GET, a form POST) may come from a page on another site that
 * rides on the user's network position or cookies, and must not start paid work.
 * Returns the refusal message, or undefined when the request may go on.
 */
export function csrfRefusal(headers: IncomingHttpHeaders): string | undefined {
  const contentType = headers['content-type'];
  if (contentType !== undefined) {
    const essence = contentType.split(';')[0]!.trim().toLowerCase();
    if (!NON_PREFLIGHTED_CONTENT_TYPES.includes(essence)) return undefined;
  }
  if (CSRF_PREVENTION_HEADERS.some((name) => (headerText(headers[name]) ?? '').length > 0)) return undefined;
  return (
    `This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Send it with ` +
    `'content-type: application/json' (POST), or a non-empty ${CSRF_PREVENTION_HEADERS.join(' or ')} header.`
  );
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
