import type { StreamChunk } from '../../streaming/stream-hub';
import { toError } from '../../lib/abort';
import type { ResolversTypes, SubscriptionResolvers } from '../generated/types';
import { allowedPolicy } from '../input/cache-policy';
import { normaliseCompletionInput, normaliseFimInput } from '../input/completion-input';
import type { CompletionLoadKey } from '../../batching/completion-service';
import { completionView } from '../../batching/types';
import type { GraphQLContext } from '../context';
import { FINISH_REASON } from './completion';

type CompletionChunk = ResolversTypes['CompletionChunk'];

/** What the subscription's source yields: a chunk, or the error that ends the stream. */
type StreamEvent = { chunk: StreamChunk; error?: undefined } | { chunk?: undefined; error: Error };

export const Subscription: SubscriptionResolvers = {
  completionStream: {
    // Validation errors (BAD_USER_INPUT) throw here, before any upstream work, and reach the
    // client like a query's. Everything later arrives through the iterator.
    subscribe: (_parent, { input }, context) => {
      context.budget.take(1, 'input');
      return stream(context, allowedPolicy(context.caller, normaliseCompletionInput(input, context.services.config.deepseek.model)));
    },
    resolve: resolveEvent,
  },

  fimCompletionStream: {
    subscribe: (_parent, { input }, context) => {
      context.budget.take(1, 'input');
      return stream(context, allowedPolicy(context.caller, normaliseFimInput(input, context.services.config.deepseek.model)));
    },
    resolve: resolveEvent,
  },
};

/**
 * The hub's stream for one subscription. With a quota policy that sets
 * `maxConcurrentStreams`, the subscription first takes a slot (a refusal is the
 * subscription's error, before any upstream work), given back when the stream ends however
 * it ends. Input is checked before this is called, so a bad input never takes a slot.
 */
function stream(context: GraphQLContext, key: CompletionLoadKey): AsyncIterableIterator<StreamEvent> | Promise<AsyncIterableIterator<StreamEvent>> {
  const { quota } = context;
  if (!quota?.limitsStreams) return open(context, key);
  return quota.openStream().then((slot) => open(context, key, () => slot?.close()));
}

/**
 * The subscription's events. When it may start the upstream stream itself, they are handed
 * over once the hub lets its set-up go on (`Cursor.setUp`): the rest of the set-up (graphql-js
 * and the transport's, the response's headers) then runs while the upstream works on a
 * request already written.
 */
function open(
  context: GraphQLContext,
  { request, policy }: CompletionLoadKey,
  onEnd?: () => void,
): AsyncIterableIterator<StreamEvent> | Promise<AsyncIterableIterator<StreamEvent>> {
  const { services, operation, cacheScope, quota } = context;
  const options = { traceContext: operation.traceContext, cacheScope, ledger: operation.ledger, quota };
  const cursor = services.streams.subscribe(request, policy, options);
  const events = errorsAsEvents(cursor, onEnd);
  return cursor.setUp ? cursor.setUp.then(() => events) : events;
}

/**
 * One event as a chunk. A stream's failure is thrown from here, so graphql-js reports it as
 * a located field error (`path: ["completionStream"]`) in a `next` payload, shaped by the
 * same formatter as a query's errors; then the stream completes. The last event (the
 * finished chunk, or the failure) is marked on the context, so the transport's payload for
 * it carries the operation's `extensions.cost` (see OperationPipeline.next).
 */
function resolveEvent(event: StreamEvent, _args: unknown, context: GraphQLContext): CompletionChunk {
  if (event.error) {
    context.lastEvent = true;
    throw event.error;
  }
  if (event.chunk.finish) context.lastEvent = true;
  return toCompletionChunk(event.chunk);
}

function toCompletionChunk(chunk: StreamChunk): CompletionChunk {
  const finish = chunk.finish;
  return {
    completionId: chunk.id,
    id: chunk.id,
    index: chunk.index,
    model: chunk.model,
    delta: chunk.delta,
    reasoningDelta: chunk.reasoningDelta,
    finishReason: finish ? FINISH_REASON[finish.reason] : null,
    usage: finish?.usage ?? null,
    cached: chunk.cached,
    // The entity as the `completion` query returns it: same id, `cached` as this stream's.
    completion: finish ? completionView(finish.result, chunk.id, chunk.cached) : null,
  };
}

/**
 * Wraps the hub's iterator: a rejected `next()` becomes one `{ error }` event, then the
 * stream ends. `onEnd` runs once when the stream is over (its last chunk, an error, or the
 * client leaving). `return()` is passed straight through (no async generator in between, whose
 * `return()` would wait for a pending `next()`), so unsubscribing releases the upstream at once.
 */
function errorsAsEvents(source: AsyncIterableIterator<StreamChunk>, onEnd?: () => void): AsyncIterableIterator<StreamEvent> {
  let ended = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    onEnd?.();
  };
  const end = (): void => {
    ended = true;
    release();
  };
  const done: IteratorResult<StreamEvent> = { value: undefined, done: true };
  const iterator: AsyncIterableIterator<StreamEvent> = {
    async next() {
      if (ended) return done;
      try {
        const result = await source.next();
        if (result.done) {
          end();
          return done;
        }
        if (result.value.finish) release(); // the stream is over once its last chunk is out
        return { value: { chunk: result.value }, done: false };
      } catch (error) {
        end();
        return { value: { error: toError(error) }, done: false };
      }
    },
    async return() {
      end();
      await source.return?.();
      return done;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
