import { isSpanContextValid, trace, type Context, type Link, type Span } from '@opentelemetry/api';
import type { Waiter } from './request-scope';

/** A batch span links to at most this many other operations' spans. */
const MAX_BATCH_LINKS = 32;

/**
 * A coalescer batch mixes loads of many operations. Its span belongs to the trace of its
 * first load that has one (else the active context); the other operations are linked.
 */
export function batchParent(batch: readonly Waiter[], fallback: Context): Context {
  return batch.find((waiter) => waiter.scope.traceContext)?.scope.traceContext ?? fallback;
}

/**
 * The parent of an upstream call: the batch span when the load that starts it belongs to
 * the batch's trace, otherwise that load's own operation, so the upstream request always
 * carries the trace of the request that triggered it.
 */
export function callParent(waiter: Waiter, batchSpan: Span, batchContext: Context): Context {
  const own = waiter.scope.traceContext;
  if (!own) return batchContext;
  return trace.getSpanContext(own)?.traceId === batchSpan.spanContext().traceId ? batchContext : own;
}

/** Links from a batch span to the operations of its other loads (distinct, capped). */
export function linksToOthers(batch: readonly Waiter[], parent: Context): Link[] {
  const parentSpanId = trace.getSpanContext(parent)?.spanId;
  const seen = new Set<string>();
  const links: Link[] = [];
  for (const waiter of batch) {
    const own = waiter.scope.traceContext;
    const spanContext = own && trace.getSpanContext(own);
    if (!spanContext || !isSpanContextValid(spanContext)) continue;
    if (spanContext.spanId === parentSpanId || seen.has(spanContext.spanId)) continue;
    seen.add(spanContext.spanId);
    links.push({ context: spanContext });
    if (links.length >= MAX_BATCH_LINKS) break;
  }
  return links;
}
