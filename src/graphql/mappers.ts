/** Models behind GraphQL object types (codegen `mappers`): what parent resolvers return. */
export type { CompletionView as CompletionModel } from '../batching/completion-service';
export type { Usage as UsageModel } from '../deepseek/types';
