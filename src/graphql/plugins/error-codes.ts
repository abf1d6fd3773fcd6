import type { GraphQLFormattedError } from 'graphql';

/**
 * `extensions.code` of every error of a response, in order (errors are already formatted,
 * so these are public codes). Empty for a response without errors.
 */
export function formattedErrorCodes(errors: readonly GraphQLFormattedError[] | undefined): string[] {
  return (errors ?? []).map((error) => {
    const code = error.extensions?.code;
    return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
  });
}
