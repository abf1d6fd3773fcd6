import { ROOT_CONTEXT, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import type { QuotaHold } from '../batching/types';
import type { OwnerClaim, StreamClaim } from '../cluster/leases';
import type { CompletionRequest, CompletionResult, DeepSeekApi, StreamEvent } from '../deepseek/types';
import { GatewayError } from '../errors';
import { abortReason, toError, type AbortSignalLike } from '../lib/abort';
import { contextWithSpan } from '../telemetry/instruments';
import type { SharedStream } from './shared-stream';

export interface PumpOptions {
  upstream: Pick<DeepSeekApi, 'completeStream'>;
  tracer: Tracer;
  /** The starting subscription's operation span: parent of the `stream hub upstream` span. */
  traceContext: Context | undefined;
  /** Keeps a finished answer (when the stream's subscribers want it stored); never throws. */
  store(result: CompletionResult): Promise<void>;
  /** Called once the stream is over, whatever its outcome (the hub forgets it then). */
  over(): void;
  /**
   * Called once the stream's source is opened: the upstream call is started (its request is
   * handed to undici within this turn of the event loop), or another replica's stream or
   * answer is followed.
   */
  opened?(): void;
  /** Reserves the stream's worst case with its payer's quota first; throws a refusal. */
  reserve?(): Promise<QuotaHold | undefined>;
  /**
   * Across replicas (src/cluster), before anything: produce (holding the lease, mirroring
   * each event for other replicas), follow the stream another replica produces, or take the
   * answer of its call. Without it, or `local`, the stream is this replica's alone.
   */
  claim?(signal: AbortSignalLike): Promise<StreamClaim>;
  /** Largest text of one chunk when another replica's finished answer is replayed. */
  replayChunkChars?: number;
}

/**
 * Reads ONE upstream stream (chat or FIM) into its shared buffer, at the upstream's pace:
 * a chunk per delta, then, once the finished answer is stored (so a query sent after the
 * last chunk finds it), the last chunk with the whole result. A failure (or an abort, when
 * every subscriber has gone) fails the stream after the chunks buffered before it.
 */
export async function pump(stream: SharedStream, request: CompletionRequest, options: PumpOptions): Promise<void> {
  const parent = options.traceContext ?? ROOT_CONTEXT;
  const span = options.tracer.startSpan('stream hub upstream', {}, parent);
  let result: CompletionResult | undefined;
  let hold: QuotaHold | undefined;
  let owner: OwnerClaim | undefined;
  /** Output seen so far, in UTF-8 bytes: what a stream cut short is charged (see `Reservation`). */
  let outputBytes = 0;
  try {
    const claim = await options.claim?.(stream.controller.signal);
    let events: AsyncIterable<StreamEvent>;
    if (claim?.kind === 'follow' || claim?.kind === 'remote') {
      // Another replica pays for it: no reservation here.
      stream.remote = true;
      stream.admit?.(true);
      events = claim.kind === 'follow' ? claim.events : replayEvents(claim.result, options.replayChunkChars ?? 4096);
      span.setAttribute('stream.source', claim.kind === 'follow' ? 'remote_stream' : 'remote_call');
    } else {
      if (claim?.kind === 'owner') {
        owner = claim;
        stream.mirrored = true;
      }
      hold = await options.reserve?.();
      // Every subscriber may have left while the lease and the reservation were taken.
      if (stream.controller.signal.aborted) throw abortReason(stream.controller.signal);
      const callOptions = { signal: stream.controller.signal, traceContext: contextWithSpan(parent, span) };
      events = options.upstream.completeStream(request, callOptions);
    }
    options.opened?.();
    for await (const event of events) {
      owner?.mirror(event);
      if (event.type === 'delta') {
        if (hold) outputBytes += Buffer.byteLength(event.content) + Buffer.byteLength(event.reasoningContent);
        stream.push({ delta: event.content, reasoningDelta: event.reasoningContent === '' ? null : event.reasoningContent });
      } else {
        result = event.result;
      }
    }
    // The client ends every stream with a finish event or an error; guard against a break.
    if (!result) throw new Error('upstream stream ended without a result');
    hold?.settle(result);
    if (stream.settled) return; // failed by the hub's `close` meanwhile
    stream.phase = { name: 'storing' };
    // Another replica's answer is stored by that replica.
    if (!stream.remote) await options.store(result);
    // Stored: the answer goes to the other replicas' followers and waiters, the lease goes.
    owner?.finish({ result });
    stream.push({
      model: result.model,
      delta: '',
      reasoningDelta: null,
      finish: { reason: result.finishReason, usage: result.usage, result },
    });
    stream.finish(result);
    span.setAttribute('stream.outcome', 'finished');
  } catch (error) {
    hold?.release(outputBytes);
    owner?.finish({ error: true, code: error instanceof GatewayError ? error.code : undefined });
    stream.fail(toError(error));
    span.setAttribute('stream.outcome', stream.controller.signal.aborted ? 'aborted' : 'failed');
    if (!stream.controller.signal.aborted) span.setStatus({ code: SpanStatusCode.ERROR });
  } finally {
    options.over();
    span.setAttributes({ 'stream.chunks': stream.head, 'stream.subscribers_peak': stream.peakSubscribers });
    span.end();
  }
}

/** Another replica's finished answer as stream events: reasoning, then the answer, in pieces, then the finish. */
async function* replayEvents(result: CompletionResult, chunkChars: number): AsyncGenerator<StreamEvent> {
  const reasoning = result.reasoningContent ?? '';
  for (let at = 0; at < reasoning.length; at += chunkChars) yield { type: 'delta', content: '', reasoningContent: reasoning.slice(at, at + chunkChars) };
  for (let at = 0; at < result.content.length; at += chunkChars) yield { type: 'delta', content: result.content.slice(at, at + chunkChars), reasoningContent: '' };
  yield { type: 'finish', result };
}
