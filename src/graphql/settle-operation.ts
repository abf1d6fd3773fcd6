import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '../errors';
import type { RequestCost } from '../telemetry/ledger';
import type { GraphQLContext } from './context';
import { dataEtag } from './hot-answers';
import { formattedErrorCodes } from './plugins/error-codes';

const QUOTA_CODES: ReadonlySet<string> = new Set([ErrorCode.RATE_LIMITED, ErrorCode.BUDGET_EXCEEDED]);

/** A cacheable policy (`policyIfCacheable` of Apollo's cache-control plugin). */
export interface CachePolicyHint {
  maxAge: number;
  scope: 'PUBLIC' | 'PRIVATE';
}

/** A finished HTTP operation's response, as far as its end depends on it. */
export interface SettleInput {
  method: string | undefined;
  /** The response is one result (not incremental). */
  single: boolean;
  data: unknown;
  /** Formatted (public) errors. */
  errors: readonly GraphQLFormattedError[] | undefined;
  /** The status the response has so far (undefined: 200). */
  status: number | undefined;
  /** The response's cache policy when cacheable, else null. */
  policy: CachePolicyHint | null;
  /** The result has no extensions of its own (before `cost`). */
  extensionsEmpty: boolean;
}

export interface Settled {
  status: number | undefined;
  /** Headers to set on the response (`www-authenticate`, `retry-after`, `etag`). */
  headers: Array<[string, string]>;
  cost: RequestCost;
  /** The data's JSON, when an ETag or a hot answer needed it. */
  dataJson: string | undefined;
}

/**
 * Ends an HTTP operation whose response is ready, for Apollo's response (the operation plugin, src/graphql/plugins/operation.ts)
 * and a direct operation's (src/graphql/direct-operations.ts) alike: 401 or 429 for a
 * request refused as a whole, an ETag for a cacheable GET answer, the operation's end (span,
 * metrics, log line) and what it cost, and the hot-answer notes staged.
 */
export function settleOperation(context: GraphQLContext, input: SettleInput): Settled {
  const codes = formattedErrorCodes(input.errors);
  let status = input.status;
  const headers: Array<[string, string]> = [];
  const refusedWhole = codes.length > 0 && input.single && input.data == null;
  // A request refused as a whole for want of credentials is an HTTP 401 with the
  // RFC 6750 challenge (a per-field refusal keeps 200, as GraphQL partial results do).
  if (refusedWhole && codes.every((code) => code === 'UNAUTHENTICATED')) {
    status = 401;
    headers.push(['www-authenticate', 'Bearer']);
  }
  // A request whose every field a quota refused is an HTTP 429 with `Retry-After`
  // (the longest wait any refusal names); a partial refusal keeps 200.
  if (refusedWhole && codes.every((code) => QUOTA_CODES.has(code))) {
    status = 429;
    const waits = (input.errors ?? []).map((error) => Number(error.extensions?.retryAfterMs) || 0);
    headers.push(['retry-after', String(Math.max(1, Math.ceil(Math.max(...waits) / 1000)))]);
  }
  // A cacheable answer over GET gets an ETag of its data (not of the whole body: the
  // per-request `extensions.cost` differs on every repeat), so a client or CDN that
  // revalidates gets a 304 (answered by the GET route's onSend hook, src/http/server.ts).
  const { policy } = input;
  const notes = context.hotAnswer;
  const wantsEtag = input.method === 'GET' && policy !== null;
  // The data's JSON only when an ETag or a hot answer needs it (a big answer costs a copy).
  const dataJson = input.single && codes.length === 0 && (wantsEtag || notes?.replayable) ? JSON.stringify(input.data ?? null) : undefined;
  const etag = wantsEtag && dataJson !== undefined ? dataEtag(dataJson) : undefined;
  if (etag) headers.push(['etag', etag]);
  context.operation.result(codes);
  const cost = context.operation.end({ status: status ?? 200 });
  // An answer read from the cache alone may be kept as a hot answer (the HTTP edge
  // keeps it once it knows the response's content type).
  if (notes?.replayable && dataJson !== undefined && (status ?? 200) === 200 && input.single) {
    const pure = cost.upstreamCalls === 0 && cost.joinedInFlight === 0 && cost.joinedRemote === 0 && cost.cacheHits > 0;
    if (pure && input.data && input.extensionsEmpty) {
      notes.staged = {
        dataJson,
        cacheable: policy !== null,
        scope: policy?.scope === 'PRIVATE' ? 'private' : policy ? 'public' : undefined,
        etag,
        operationType: context.operation.type ?? 'query',
        operationName: context.operation.name,
        cacheHits: cost.cacheHits,
        entries: [...notes.entries.values()],
      };
    }
  }
  return { status, headers, cost, dataJson };
}
