import type { QueryResolvers } from '../generated/types';
import { allowedPolicy } from '../input/cache-policy';
import { normaliseCompletionInput, normaliseFimInput } from '../input/completion-input';
import { hintCompletion } from './cache-hints';
import { upstreamStatus } from './upstream-status';
import { usage } from './usage';

export const Query: QueryResolvers = {
  completion: (_parent, { input }, context, info) => {
    const { loaders, services, budget, caller } = context;
    budget.take(1, 'input');
    const key = allowedPolicy(caller, normaliseCompletionInput(input, services.config.deepseek.model));
    return loaders.completion.load(key).then((view) => hintCompletion(info, context, key.policy, view));
  },

  // One promise per item: graphql-js reports a rejected item as that item's error and the
  // item as null (the list is nullable per item), while the other items still resolve.
  // Duplicates share one load through the per-request loader.
  completions: (_parent, { inputs }, context, info) => {
    const { loaders, services, budget, caller } = context;
    budget.take(inputs.length, 'inputs');
    return inputs.map(async (input, index) => {
      const key = allowedPolicy(caller, normaliseCompletionInput(input, services.config.deepseek.model, `inputs[${index}]`));
      return hintCompletion(info, context, key.policy, await loaders.completion.load(key));
    });
  },

  fimCompletion: (_parent, { input }, context, info) => {
    const { loaders, services, budget, caller } = context;
    budget.take(1, 'input');
    const key = allowedPolicy(caller, normaliseFimInput(input, services.config.deepseek.model));
    return loaders.completion.load(key).then((view) => hintCompletion(info, context, key.policy, view));
  },

  // Model metadata and the balance are kept briefly (DEEPSEEK_ACCOUNT_INFO_TTL_MS), and each
  // field counts against the operation's budget like a completion, since each may cost an
  // upstream call. The operation's trace context parents the upstream span.
  models: async (_parent, _args, { services, budget, operation }) => {
    budget.take(1, 'models');
    return (await services.accountInfo.models(operation.traceContext)).map((model) => ({
      id: model.id,
      ownedBy: model.ownedBy,
      name: model.name ?? null,
      contextWindow: model.contextWindow ?? null,
      maxOutputTokens: model.maxOutputTokens ?? null,
      inputModalities: model.inputModalities ?? null,
      outputModalities: model.outputModalities ?? null,
      reasoningEffortLevels: model.reasoningEffortLevels ?? null,
      defaultReasoningEffort: model.defaultReasoningEffort ?? null,
    }));
  },

  balance: async (_parent, _args, { services, budget, operation }) => {
    budget.take(1, 'balance');
    return services.accountInfo.balance(operation.traceContext);
  },

  upstream: (_parent, _args, { services }) => upstreamStatus(services),

  usage: (_parent, args, context) => usage(args, context),
};
