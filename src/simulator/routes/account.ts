import { DEFAULT_SIMULATOR_MODELS } from '../models';
import type { RouteContext } from './context';

/** `GET /models`: the OpenAI list shape with the 2026-11 metadata. */
export function handleModels(ctx: RouteContext): void {
  ctx.ex.sendJson(200, { object: 'list', data: DEFAULT_SIMULATOR_MODELS });
}

/** `GET /user/balance`: decimal strings; an exhausted key reads as unavailable, not 402. */
export function handleBalance(ctx: RouteContext): void {
  const info = ctx.exhausted
    ? { currency: 'CNY', total_balance: '0.00', granted_balance: '0.00', topped_up_balance: '0.00' }
    : { currency: 'CNY', total_balance: '110.00', granted_balance: '10.00', topped_up_balance: '100.00' };
  ctx.ex.sendJson(200, { is_available: !ctx.exhausted, balance_infos: [info] });
}
