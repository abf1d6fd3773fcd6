/** The limits an operation is held to before anything runs (config.graphql; see the README). */
export interface QueryLimits {
  /** Lexical tokens per document (the parser stops past it). */
  maxTokens: number;
  /** Deepest selection (introspection excepted). */
  maxDepth: number;
  /** Aliases per operation, `__typename` included. */
  maxAliases: number;
  /** Field selections per operation, fragments expanded (introspection excepted). */
  maxFields: number;
  /** Characters of an operation name. */
  maxOperationNameLength: number;
  /** Items of any list in the variables, and of `messages` and `_entities` representations. */
  maxListItems: number;
  /** Completion fields plus `completions` list items per operation. */
  maxCompletionsPerOperation: number;
}
