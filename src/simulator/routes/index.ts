import { handleBalance, handleModels } from './account';
import { handleChat } from './chat';
import type { RouteContext } from './context';
import { handleFim } from './fim';

export interface Route {
  method: 'GET' | 'POST';
  /** Billable completions: queued (latency, keep-alive) and refused for exhausted keys. */
  completion: boolean;
  handle(ctx: RouteContext): void | Promise<void>;
}

const chat: Route = { method: 'POST', completion: true, handle: handleChat };
const fim: Route = { method: 'POST', completion: true, handle: handleFim };
const models: Route = { method: 'GET', completion: false, handle: handleModels };
const balance: Route = { method: 'GET', completion: false, handle: handleBalance };

/** Paths DeepSeek serves; `/v1` is an OpenAI-compatibility alias, not a model version. */
export const ROUTES: Readonly<Record<string, Route>> = {
  '/chat/completions': chat,
  '/v1/chat/completions': chat,
  '/beta/chat/completions': chat,
  '/beta/completions': fim,
  '/models': models,
  '/v1/models': models,
  '/user/balance': balance,
};
