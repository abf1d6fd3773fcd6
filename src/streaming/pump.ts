import { ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { QuotaHold } from '../batching/types';
import type { CompletionRequest, CompletionResult, DeepSeekApi } from '../deepseek/types';
import { abortReason, toError } from '../lib/abort';
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
  /** Reserves the stream's worst case with its payer's quota first; throws a refusal. */
  reserve?(): Promise<QuotaHold | undefined>;
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
  /** Output seen so far, in UTF-8 bytes: what a stream cut short is charged (see `Reservation`). */
  let outputBytes = 0;
  try {
    hold = await options.reserve?.();
    // Every subscriber may have left while the reservation was made.
    if (stream.controller.signal.aborted) throw abortReason(stream.controller.signal);
    const callOptions = { signal: stream.controller.signal, traceContext: trace.setSpan(parent, span) };
    for await (const event of options.upstream.completeStream(request, callOptions)) {
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
    await options.store(result);
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
    stream.fail(toError(error));
    span.setAttribute('stream.outcome', stream.controller.signal.aborted ? 'aborted' : 'failed');
    if (!stream.controller.signal.aborted) span.setStatus({ code: SpanStatusCode.ERROR });
  } finally {
    options.over();
    span.setAttributes({ 'stream.chunks': stream.head, 'stream.subscribers_peak': stream.peakSubscribers });
    span.end();
  }
}
