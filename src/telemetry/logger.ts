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

/** The structured JSON logger (one per process, made at start-up and passed down). */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'deepseek-graphql-gateway' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that drops everything (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
