import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out whatever the level: keys, auth headers, and prompt/answer text.
 * Code refers to a prompt by its completion id, never by its content; this list is the
 * second line of defence when someone logs an object carelessly.
 */
export const REDACTED_PATHS = [
  'apiKey',
  'apiKeys',
  'key',
  'authorization',
  'Authorization',
  '*.apiKey',
  '*.apiKeys',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.headers.authorization',
  'prompt',
  'messages',
  'content',
  'suffix',
  'system',
  '*.prompt',
  '*.messages',
  '*.content',
  '*.suffix',
  '*.system',
  'variables',
  '*.variables',
];

/** Log bytes gathered before a write, and the longest a line waits (see `createLogger`). */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 100;

/** The process's own stdout destination, once `createLogger` made it (see `flushLogs`). */
const loggerStreams: { current?: { flushSync(): void } } = {};

/** Writes out what the asynchronous stdout destination still holds (call before `process.exit`). */
export function flushLogs(): void {
  try {
    loggerStreams.current?.flushSync();
  } catch {
    // Nothing to flush yet, or stdout is gone: nothing more can be done.
  }
}

/**
 * An asynchronous, buffered destination on file descriptor `fd` (the process's stdout: 1):
 * lines are written together once 4 KiB have gathered, or every 100 ms, instead of one
 * write(2) per line (measured: 8-10 µs of CPU less per request under load, and the write was
 * 9% of a cache miss's CPU at 400 req/s, when lines rarely overlap a write under way).
 * `flushSync` writes what is left (`flushLogs`, before an exit); a line waits at most 100 ms.
 *
 * sonic-boom in its buffer mode, each line handed over as a Buffer. In its default mode it
 * appends each line to one pending string and takes that string's byte length on every
 * write, which flattens (copies) everything pending each time: about 2 KiB copied and
 * allocated per line at this buffer size (5.5 KB of a cache miss's 98 KB of allocations,
 * sampled at c=100). In buffer mode the pending lines stay a list, joined once per write.
 */
export function bufferedDestination(fd: number): pino.DestinationStream & { flushSync(): void; end(): Promise<void> } {
  const boom = pino.destination({ dest: fd, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS, contentMode: 'buffer' });
  return {
    // SonicBoom's type says string; in buffer mode it takes (and needs) Buffers.
    write: (line: string) => boom.write(Buffer.from(line) as unknown as string),
    flushSync: () => boom.flushSync(),
    // Writes what is left, stops the periodic flush and closes `fd` (tests; the process's
    // stdout is flushed with `flushLogs` and never closed).
    end: () =>
      new Promise<void>((resolve) => {
        boom.once('close', () => resolve());
        boom.end();
      }),
  };
}

/** Where a logger's access-line writer is kept (inherited by its children). */
const ACCESS = Symbol('access log');

/**
 * Writes the one line each operation ends with, in the logger's format (pino's JSON with a
 * level label, an ISO time and the service), on the logger's destination.
 */
export interface AccessLog {
  enabled(level: AccessLevel): boolean;
  /** `fields` must hold only known scalars and arrays of them: nothing here is redacted. */
  write(level: AccessLevel, bindings: string, fields: Record<string, unknown>, msg: string): void;
}

export type AccessLevel = 'debug' | 'info' | 'warn' | 'error';

type WithAccess = Logger & { [ACCESS]?: AccessLog };

/**
 * The structured JSON logger (one per process, made at start-up and passed down).
 *
 * It carries a writer for the one line each operation ends with (`accessLogOf`), on the
 * same destination: that line is built field by field from known scalars (names, codes,
 * counts, ids), so it has nothing to redact, and pino's redaction with wildcard paths was
 * the single largest cost of a cache hit (12.6 µs a line in a micro-benchmark, against
 * 1.4 without it; about 30 µs of the process's CPU a request). Every other line keeps the
 * redaction.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'deepseek-graphql-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const stream = destination ?? bufferedDestination(1);
  if (!destination) loggerStreams.current = stream as unknown as { flushSync(): void };
  const logger: WithAccess = pino({ ...options, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream);
  const access: AccessLog = {
    enabled: (lineLevel) => logger.isLevelEnabled(lineLevel),
    write: (lineLevel, bindings, fields, msg) => {
      const body = JSON.stringify(fields);
      stream.write(
        `{"level":"${lineLevel}","time":"${new Date().toISOString()}","service":"deepseek-graphql-gateway"${bindings}${body.length > 2 ? `,${body.slice(1, -1)}` : ''},"msg":${JSON.stringify(msg)}}\n`,
      );
    },
  };
  Object.defineProperty(logger, ACCESS, { value: access, enumerable: false });
  return logger;
}

/**
 * The access-line writer of `logger` (or of the root it is a child of), for lines built
 * only from known scalar fields; undefined for a logger not made by `createLogger`.
 */
export function accessLogOf(logger: Logger): AccessLog | undefined {
  return (logger as WithAccess)[ACCESS];
}

/** Where a request logger keeps its bindings as JSON (see `requestLogger`). */
const BINDINGS = Symbol('bindings');

/**
 * A child of `logger` bound to one request id, built only when something logs through it.
 * Most requests log nothing but the line they end with, which is written from the bindings
 * alone (`bindingsOf`), so they never pay for a pino child (its bindings are serialised
 * through the redaction when it is made, and parsed back by `bindings()`).
 */
export function requestLogger(logger: Logger, reqId: string): Logger {
  return lazyChild(logger, 'reqId', reqId);
}

/** `requestLogger` for any one binding (a subscription's `subscriptionId`, say). */
export function lazyChild(logger: Logger, key: string, value: string): Logger {
  const state: LazyChildState = { parent: logger, key, value, child: undefined };
  return new Proxy(state, LAZY_CHILD) as unknown as Logger;
}

interface LazyChildState {
  parent: Logger;
  key: string;
  value: string;
  child: Logger | undefined;
}

const childOf = (state: LazyChildState): Logger => (state.child ??= state.parent.child({ [state.key]: state.value }));

/** The bindings of the loggers lazy children are made from (a few: the root and a component child each). */
const parentBindings = new WeakMap<Logger, string>();

/** One handler for every lazy child: nothing is allocated per request but the state. */
const LAZY_CHILD: ProxyHandler<LazyChildState> = {
  get(state, property) {
    if (property === BINDINGS) {
      let inherited = parentBindings.get(state.parent);
      if (inherited === undefined) parentBindings.set(state.parent, (inherited = bindingsOf(state.parent)));
      return `${inherited},${JSON.stringify(state.key)}:${JSON.stringify(state.value)}`;
    }
    if (property === ACCESS) return (state.parent as WithAccess)[ACCESS];
    const target = childOf(state);
    const value: unknown = Reflect.get(target, property, target);
    return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
  },
  set(state, property, value) {
    return Reflect.set(childOf(state), property, value);
  },
  has(state, property) {
    return Reflect.has(childOf(state), property);
  },
};

/** A child logger's own bindings (`reqId`, …) as the `,"key":value` JSON its lines carry. */
export function bindingsOf(logger: Logger): string {
  const known = (logger as Logger & { [BINDINGS]?: string })[BINDINGS];
  if (typeof known === 'string') return known;
  const bindings = logger.bindings();
  delete bindings.service;
  const json = JSON.stringify(bindings);
  return json.length > 2 ? `,${json.slice(1, -1)}` : '';
}

/** A logger that drops everything (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
