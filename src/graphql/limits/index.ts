import type { ParseOptions } from 'graphql';
import type { Config } from '../../config';
import type { QueryLimits } from './types';

export { CompletionBudget } from './budget';
export { checkRawOperation, type RawOperation } from './request';
export { maxFieldsRule, operationNameRule, queryLimitRules } from './rules';
export { subscriptionRootDirectivesRule } from './subscription-root';
export type { QueryLimits } from './types';

/** The limits from the validated configuration. */
export function queryLimits(config: Config['graphql']): QueryLimits {
  return { ...config };
}

/**
 * What the parser is told: it stops after `maxTokens` tokens, so a huge document costs
 * the lexing of `maxTokens` tokens, never the parse and validation of all of it.
 */
export function parseOptions(limits: QueryLimits): ParseOptions {
  return { maxTokens: limits.maxTokens };
}
