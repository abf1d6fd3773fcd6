import { SCOPES, requireScopes, type Caller } from '../../auth';
import type { NormalisedInput } from './completion-input';

/**
 * A `cache` policy other than USE spends money on purpose (BYPASS and REFRESH always call
 * DeepSeek): it needs the `completions:write` scope, like `createCompletion`. Throws
 * FORBIDDEN (or UNAUTHENTICATED) for that field alone, before any upstream call.
 */
export function allowedPolicy<R>(caller: Caller, input: NormalisedInput<R>): NormalisedInput<R> {
  if (input.policy !== 'USE') requireScopes(caller, SCOPES.write);
  return input;
}
