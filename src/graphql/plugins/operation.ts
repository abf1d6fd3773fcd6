import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLContext } from '../context';
import { ErrorCode } from '../../errors';
import { responseErrorCodes } from './error-codes';
import { dataEtag } from '../hot-answers';

const QUOTA_CODES: ReadonlySet<string> = new Set([ErrorCode.RATE_LIMITED, ErrorCode.BUDGET_EXCEEDED]);

/**
 * Apollo's side of the operation pipeline (src/graphql/pipeline.ts) for HTTP operations:
 * tells the operation what its document resolved to, and ends it when the response is
 * ready, which ends its span, records the `graphql.server.*` metrics and writes its one
 * log line. The response gets what the operation cost as `extensions.cost` = { upstreamCalls,
 * cacheHits, joinedInFlight, joinedRemote, upstreamMs, overheadMs, totalMs, estimatedCostUsd }, so a
 * developer sees in Sandbox whether a query hit the cache, joined another caller's call or
 * waited on DeepSeek.
 */
export function operationPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, operationName, contextValue }) {
          if (operation) contextValue.operation.resolved(operation.operation, operationName ?? undefined);
          contextValue.hotAnswer?.resolved(operation);
        },
        async willSendResponse({ request, response, contextValue, overallCachePolicy }) {
          const codes = responseErrorCodes(response);
          // A request refused as a whole for want of credentials is an HTTP 401 with the
          // RFC 6750 challenge (a per-field refusal keeps 200, as GraphQL partial results do).
          if (codes.length > 0 && codes.every((code) => code === 'UNAUTHENTICATED') && response.body.kind === 'single' && response.body.singleResult.data == null) {
            response.http.status = 401;
            response.http.headers.set('www-authenticate', 'Bearer');
          }
          // A request whose every field a quota refused is an HTTP 429 with `Retry-After`
          // (the longest wait any refusal names); a partial refusal keeps 200.
          if (codes.length > 0 && codes.every((code) => QUOTA_CODES.has(code)) && response.body.kind === 'single' && response.body.singleResult.data == null) {
            response.http.status = 429;
            const waits = (response.body.singleResult.errors ?? []).map((error) => Number(error.extensions?.retryAfterMs) || 0);
            response.http.headers.set('retry-after', String(Math.max(1, Math.ceil(Math.max(...waits) / 1000))));
          }
          // A cacheable answer over GET gets an ETag of its data (not of the whole body: the
          // per-request `extensions.cost` differs on every repeat), so a client or CDN that
          // revalidates gets a 304 (answered by the GET route's onSend hook, src/http/server.ts).
          const policy = overallCachePolicy.policyIfCacheable();
          const notes = contextValue.hotAnswer;
          const wantsEtag = request.http?.method === 'GET' && policy !== null;
          // The data's JSON only when an ETag or a hot answer needs it (a big answer costs a copy).
          const dataJson =
            response.body.kind === 'single' && codes.length === 0 && (wantsEtag || notes?.replayable)
              ? JSON.stringify(response.body.singleResult.data ?? null)
              : undefined;
          const etag = wantsEtag && dataJson !== undefined ? dataEtag(dataJson) : undefined;
          if (etag) response.http.headers.set('etag', etag);
          contextValue.operation.result(codes);
          const cost = contextValue.operation.end({ status: response.http.status ?? 200 });
          // An answer read from the cache alone may be kept as a hot answer (the HTTP edge
          // keeps it once it knows the response's content type).
          if (notes?.replayable && dataJson !== undefined && (response.http.status ?? 200) === 200 && response.body.kind === 'single') {
            const result = response.body.singleResult;
            const pure = cost.upstreamCalls === 0 && cost.joinedInFlight === 0 && cost.joinedRemote === 0 && cost.cacheHits > 0;
            if (pure && result.data && (result.extensions === undefined || Object.keys(result.extensions).length === 0)) {
              notes.staged = {
                dataJson,
                cacheable: policy !== null,
                scope: policy?.scope === 'PRIVATE' ? 'private' : policy ? 'public' : undefined,
                etag,
                operationType: contextValue.operation.type ?? 'query',
                operationName: contextValue.operation.name,
                cacheHits: cost.cacheHits,
                entries: [...notes.entries.values()],
              };
            }
          }
          if (response.body.kind === 'single') {
            const result = response.body.singleResult;
            // Object.assign, not a spread followed by `cost`: slow on Node 20 (see withRequest in src/transport/types.ts).
            result.extensions = Object.assign({}, result.extensions, { cost });
          }
        },
      };
    },
  };
}
