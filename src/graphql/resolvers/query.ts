import { GatewayError } from '../../errors';
import type { QueryResolvers } from '../generated/types';
import { normaliseCompletionInput, normaliseFimInput } from '../input/completion-input';
import { upstreamStatus } from './upstream-status';

export const Query: QueryResolvers = {
  completion: (_parent, { input }, { loaders, services }) =>
    loaders.completion.load(normaliseCompletionInput(input, services.config.deepseek.model)),

  completions: async (_parent, { inputs }, { loaders, services }) => {
    // Each item is validated on its own: a bad item becomes null with its own error (the
    // list is nullable per item), the others still run, and duplicates share one load.
    const settled = await Promise.allSettled(
      inputs.map((input, index) =>
        Promise.resolve()
          .then(() => normaliseCompletionInput(input, services.config.deepseek.model, `inputs[${index}]`))
          .then((key) => loaders.completion.load(key)),
      ),
    );
    return settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : asError(outcome.reason)));
  },

  fimCompletion: (_parent, { input }, { loaders, services }) =>
    loaders.completion.load(normaliseFimInput(input, services.config.deepseek.model)),

  models: async (_parent, _args, { services, signal }) =>
    (await services.deepseek.models({ signal })).map((model) => ({
      id: model.id,
      ownedBy: model.ownedBy,
      name: model.name ?? null,
      contextWindow: model.contextWindow ?? null,
      maxOutputTokens: model.maxOutputTokens ?? null,
      inputModalities: model.inputModalities ?? null,
      outputModalities: model.outputModalities ?? null,
      reasoningEffortLevels: model.reasoningEffortLevels ?? null,
      defaultReasoningEffort: model.defaultReasoningEffort ?? null,
    })),

  balance: async (_parent, _args, { services, signal }) => services.deepseek.balance({ signal }),

  upstream: (_parent, _args, { services }) => upstreamStatus(services),
};

/** graphql-js reports an Error in a list slot as that item's error and the item as null. */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new GatewayError('INTERNAL_SERVER_ERROR', 'Unexpected failure.');
}
