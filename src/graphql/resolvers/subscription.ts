import type { StreamChunk } from '../../streaming/stream-hub';
import { toError } from '../../lib/abort';
import type { ResolversTypes, SubscriptionResolvers } from '../generated/types';
import { allowedPolicy } from '../input/cache-policy';
import { normaliseCompletionInput } from '../input/completion-input';
import { FINISH_REASON } from './completion';

type CompletionChunk = ResolversTypes['CompletionChunk'];

/** What the subscription's source yields: a chunk, or the error that ends the stream. */
type StreamEvent = { chunk: StreamChunk; error?: undefined } | { chunk?: undefined; error: Error };

export const Subscription: SubscriptionResolvers = {
  completionStream: {
    // Validation errors (BAD_USER_INPUT) throw here, before any upstream work, and reach the
    // client like a query's. Everything later arrives through the iterator.
    subscribe: (_parent, { input }, { services, budget, operation, caller, cacheScope }) => {
      budget.take(1, 'input');
      const { request, policy } = allowedPolicy(caller, normaliseCompletionInput(input, services.config.deepseek.model));
      return errorsAsEvents(
        services.streams.subscribe(request, policy, { traceContext: operation.traceContext, cacheScope, ledger: operation.ledger }),
      );
    },
    // A stream's failure is thrown from the field resolver, so graphql-js reports it as a
    // located field error (`path: ["completionStream"]`) in a `next` payload, shaped by the
    // same formatter as a query's errors; then the stream completes.
    resolve: (event: StreamEvent): CompletionChunk => {
      if (event.error) throw event.error;
      return toCompletionChunk(event.chunk);
    },
  },
};

function toCompletionChunk(chunk: StreamChunk): CompletionChunk {
  return {
    id: chunk.id,
    index: chunk.index,
    model: chunk.model,
    delta: chunk.delta,
    reasoningDelta: chunk.reasoningDelta,
    finishReason: chunk.finish ? FINISH_REASON[chunk.finish.reason] : null,
    usage: chunk.finish?.usage ?? null,
    cached: chunk.cached,
  };
}

/**
 * Wraps the hub's iterator: a rejected `next()` becomes one `{ error }` event, then the
 * stream ends. `return()` is passed straight through (no async generator in between, whose
 * `return()` would wait for a pending `next()`), so unsubscribing releases the upstream at once.
 */
function errorsAsEvents(source: AsyncIterableIterator<StreamChunk>): AsyncIterableIterator<StreamEvent> {
  let ended = false;
  const done: IteratorResult<StreamEvent> = { value: undefined, done: true };
  const iterator: AsyncIterableIterator<StreamEvent> = {
    async next() {
      if (ended) return done;
      try {
        const result = await source.next();
        if (result.done) {
          ended = true;
          return done;
        }
        return { value: { chunk: result.value }, done: false };
      } catch (error) {
        ended = true;
        return { value: { error: toError(error) }, done: false };
      }
    },
    async return() {
      ended = true;
      await source.return?.();
      return done;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
