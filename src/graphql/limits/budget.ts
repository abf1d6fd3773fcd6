import { BadUserInputError } from '../../errors';

/**
 * How many completions one operation may still ask for: completion fields and every
 * `completions` list item count, whether or not they end up cached, so the worst case of
 * one operation is bounded before any DeepSeek call. One per operation (context).
 */
export class CompletionBudget {
  #remaining: number;

  constructor(readonly limit: number) {
    this.#remaining = limit;
  }

  /** Takes `count` from the budget or throws BAD_USER_INPUT naming `field`. */
  take(count: number, field: string): void {
    if (count > this.#remaining) {
      throw new BadUserInputError(
        `An operation may ask for at most ${this.limit} completions (fields plus list items; MAX_COMPLETIONS_PER_OPERATION); split it into several operations.`,
        field,
        { limit: 'MAX_COMPLETIONS_PER_OPERATION' },
      );
    }
    this.#remaining -= count;
  }
}
