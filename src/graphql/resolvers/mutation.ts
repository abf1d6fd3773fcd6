import type { MutationResolvers } from '../generated/types';
import { normaliseCompletionInput } from '../input/completion-input';

export const Mutation: MutationResolvers = {
  // Always generates anew: the input's own cache policy is ignored except BYPASS, which
  // keeps the result out of the store; otherwise it is REFRESH (no read, write).
  createCompletion: (_parent, { input }, { loaders, services, budget }) => {
    budget.take(1, 'input');
    const { request } = normaliseCompletionInput(input, services.config.deepseek.model);
    return loaders.completion.load({ request, policy: input.cache === 'BYPASS' ? 'BYPASS' : 'REFRESH' });
  },

  evictCompletion: (_parent, { id }, { loaders }) => loaders.evict(id),
};
