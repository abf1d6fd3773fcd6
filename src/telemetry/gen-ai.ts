import type { Attributes } from '@opentelemetry/api';
import type { TokenUsage } from './cost';

/**
 * Span attributes of a DeepSeek completion call, after the GenAI semantic conventions.
 * Only names, models and counts: never prompt or answer text (`gen_ai.input.messages` and
 * friends are deliberately not recorded).
 */

export type GenAiOperation = 'chat' | 'text_completion';

/** Known before the call. */
export function genAiRequestAttributes(operation: GenAiOperation, model: string, maxTokens?: number): Attributes {
  const attributes: Attributes = {
    'gen_ai.operation.name': operation,
    'gen_ai.system': 'deepseek',
    'gen_ai.provider.name': 'deepseek',
    'gen_ai.request.model': model,
  };
  if (maxTokens !== undefined) attributes['gen_ai.request.max_tokens'] = maxTokens;
  return attributes;
}

/** From the parsed response. */
export function genAiResponseAttributes(result: {
  model: string;
  finishReason: string;
  upstreamId: string;
  usage: TokenUsage & { reasoningTokens?: number };
}): Attributes {
  const attributes: Attributes = {
    'gen_ai.response.model': result.model,
    'gen_ai.response.id': result.upstreamId,
    'gen_ai.response.finish_reasons': [result.finishReason],
    'gen_ai.usage.input_tokens': result.usage.promptTokens,
    'gen_ai.usage.output_tokens': result.usage.completionTokens,
    'gen_ai.usage.cache_read.input_tokens': result.usage.cacheHitTokens,
  };
  if (result.usage.reasoningTokens !== undefined) attributes['gen_ai.usage.reasoning.output_tokens'] = result.usage.reasoningTokens;
  return attributes;
}
