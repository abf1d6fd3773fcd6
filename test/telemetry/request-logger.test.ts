import { accessLogOf, bindingsOf, createLogger, lazyChild, requestLogger } from '../../src/telemetry/logger';

describe('requestLogger: a request-bound child made only when used', () => {
  const capture = () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    return { lines, logger };
  };

  it('writes the access line with the request id and the root writer, like a pino child', () => {
    const { lines, logger } = capture();
    const lazy = requestLogger(logger, 'req-1"x');
    const child = logger.child({ reqId: 'req-1"x' });
    expect(bindingsOf(lazy)).toBe(bindingsOf(child));
    const access = accessLogOf(lazy);
    expect(access).toBe(accessLogOf(logger));
    access!.write('info', bindingsOf(lazy), { status: 200 }, 'graphql request');
    expect(lines.at(-1)).toMatchObject({ level: 'info', reqId: 'req-1"x', status: 200, msg: 'graphql request' });
  });

  it('logs through a real child when used, with the redaction and the level of the root', () => {
    const { lines, logger } = capture();
    const lazy = requestLogger(logger, 'req-2');
    lazy.warn({ authorization: 'Bearer secret', prompt: 'private words', code: 7 }, 'something');
    expect(lines.at(-1)).toMatchObject({ level: 'warn', reqId: 'req-2', authorization: '[redacted]', prompt: '[redacted]', code: 7, msg: 'something' });
    expect(JSON.stringify(lines)).not.toContain('secret');
    expect(lazy.isLevelEnabled('debug')).toBe(true);
    lazy.child({ component: 'x' }).info('nested');
    expect(lines.at(-1)).toMatchObject({ reqId: 'req-2', component: 'x', msg: 'nested' });
  });

  it('made from a child (a transport component), carries its bindings too, on the access line and when used', () => {
    const { lines, logger } = capture();
    const component = logger.child({ component: 'websocket' });
    const lazy = lazyChild(component, 'subscriptionId', 'sub-"1');
    expect(bindingsOf(lazy)).toBe(bindingsOf(component.child({ subscriptionId: 'sub-"1' })));
    accessLogOf(lazy)!.write('info', bindingsOf(lazy), { outcome: 'ok' }, 'graphql subscription');
    expect(lines.at(-1)).toMatchObject({ component: 'websocket', subscriptionId: 'sub-"1', outcome: 'ok' });
    lazy.info({ n: 1 }, 'used');
    expect(lines.at(-1)).toMatchObject({ component: 'websocket', subscriptionId: 'sub-"1', n: 1, msg: 'used' });
  });
});
