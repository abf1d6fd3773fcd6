import { maybeCacheControlFromInfo } from '@apollo/cache-control-types';
import type { GraphQLResolveInfo } from 'graphql';
import type { CachePolicy, CompletionView } from '../../batching/completion-service';
import { isStorable } from '../../deepseek/provider';
import type { GraphQLContext } from '../context';

/**
 * Apollo's cache hint for a completion field (see the `@cacheControl` note in the schema).
 * An answer read through the cache (USE) that the cache keeps is immutable for its id until
 * it expires, so a browser or CDN may keep it as long as the store does: `maxAge` is what its
 * stored copy has left (CACHE_TTL_SECONDS from `createdAt`). PRIVATE when the answer belongs
 * to the caller (a token, or a per-tenant cache scope), PUBLIC otherwise. REFRESH and BYPASS
 * answers, and answers the cache does not keep, stay uncacheable (the field's default).
 */
export function hintCompletion(info: GraphQLResolveInfo, context: GraphQLContext, policy: CachePolicy, view: CompletionView, now = Date.now()): CompletionView {
  context.hotAnswer?.completion(view, policy, context.cacheScope);
  if (policy !== 'USE' || !isStorable(view)) return view;
  // Apollo's plugin sets `info.cacheControl`; a direct operation gathers hints in its context.
  const cacheControl = maybeCacheControlFromInfo(info);
  const hints = context.cacheHints;
  if (!cacheControl && !hints) return view;
  const ageSeconds = Math.max(0, (now - Date.parse(view.createdAt)) / 1000);
  const maxAge = Math.floor(context.services.config.cache.ttlSeconds - ageSeconds);
  if (!(maxAge > 0)) return view;
  const scope = context.caller.kind === 'token' || context.cacheScope !== undefined ? 'PRIVATE' : 'PUBLIC';
  cacheControl?.setCacheHint({ maxAge, scope });
  hints?.add(maxAge, scope);
  return view;
}
