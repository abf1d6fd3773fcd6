import type { IncomingHttpHeaders } from 'node:http';

/** Query-string parameters that carry a token in the wild. */
const TOKEN_PARAMETERS = new Set(['access_token', 'token', 'jwt', 'authorization', 'id_token', 'bearer']);

/**
 * The caller's credentials from an HTTP request (GraphQL over HTTP and SSE): the
 * `Authorization` header, never the URL. A token in the query string is refused outright,
 * because URLs end up in access logs, proxies and browser history.
 */
export function credentialsOf(request: { headers: IncomingHttpHeaders; query?: unknown }): { authorization?: string; refusal?: string } {
  const query = request.query;
  if (query && typeof query === 'object') {
    for (const key of Object.keys(query)) {
      if (TOKEN_PARAMETERS.has(key.toLowerCase())) {
        return { refusal: 'Credentials go in the Authorization header (Bearer <token>), never in the URL.' };
      }
    }
  }
  const header = request.headers.authorization;
  return { authorization: Array.isArray(header) ? header[0] : header };
}
