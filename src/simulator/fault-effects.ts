import { UnreachableCaseError } from '../errors';
import { statusError } from './errors';
import type { Exchange } from './exchange';
import type { Fault } from './types';

const DEFAULT_BLANK_LINE_INTERVAL_MS = 50;

/**
 * Acts out `fault` on one request. Resolves true when normal handling should follow
 * (blank-lines with a count, truncate, delay), false when the fault was the whole answer.
 */
export async function applyFault(ex: Exchange, fault: Fault, request: { key: string; stream: boolean }): Promise<boolean> {
  switch (fault.kind) {
    case 'status': {
      const error = statusError(fault.status, request.key, fault.message);
      const headers: Record<string, string> = { ...error.headers };
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      ex.sendJson(error.status, error.toBody(), headers);
      return false;
    }
    case 'reset':
      // RST rather than FIN, so clients see ECONNRESET as after a dropped upstream.
      ex.res.socket?.resetAndDestroy();
      ex.abort();
      return false;
    case 'hang':
      await ex.untilAborted();
      return false;
    case 'blank-lines': {
      ex.commit(200, request.stream ? 'sse' : 'json');
      const interval = fault.intervalMs ?? DEFAULT_BLANK_LINE_INTERVAL_MS;
      for (let sent = 0; fault.count === undefined || sent < fault.count; sent++) {
        if (!(await ex.sleep(interval))) return false;
        ex.keepAlive();
      }
      return true;
    }
    case 'truncate':
      ex.truncateAfterChunks = fault.afterChunks ?? 1;
      return true;
    case 'delay':
      return ex.sleep(fault.ms);
    default:
      throw new UnreachableCaseError(fault);
  }
}
