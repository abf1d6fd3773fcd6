import type { GraphQLResponse } from '@apollo/server';

/**
 * `extensions.code` of every error in a response, in order (errors are already formatted,
 * so these are public codes). Empty for a response without errors.
 */
export function responseErrorCodes(response: GraphQLResponse): string[] {
  if (response.body.kind !== 'single') return [];
  return (response.body.singleResult.errors ?? []).map((error) => {
    const code = error.extensions?.code;
    return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
  });
}
