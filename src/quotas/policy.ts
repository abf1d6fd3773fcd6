import { readFileSync, statSync } from 'node:fs';
import type * as YamlModule from 'yaml';
import { z } from 'zod';
import { TENANT_PATTERN } from '../auth/claims';

/**
 * One quota policy (QUOTAS_FILE). Every limit is optional: a limit left out is not counted.
 * `per`: whose counters the limits fill, each caller's own (`subject`, the default) or one
 * set shared by the whole tenant (`tenant`).
 */
export interface QuotaPolicy {
  per: 'subject' | 'tenant';
  /** GraphQL operations started, per minute (fixed one-minute windows). */
  requestsPerMinute?: number;
  /** DeepSeek calls (and streams) this caller starts, per minute; cache hits and joins are free. */
  upstreamCallsPerMinute?: number;
  /** Prompt + completion tokens of the calls this caller starts, per UTC calendar day. */
  tokensPerDay?: number;
  /** Estimated USD of those calls (list prices), per UTC calendar day. */
  usdPerDay?: number;
  /** Estimated USD per UTC calendar month. */
  usdPerMonth?: number;
  /** Subscriptions open at once, across every replica. */
  maxConcurrentStreams?: number;
}

/** The whole file: a policy for callers of any tenant, and policies by tenant that replace it. */
export interface QuotaPolicies {
  default?: QuotaPolicy;
  tenants: Readonly<Record<string, QuotaPolicy>>;
}

/** A file larger than this is refused (it is a handful of policies, not data). */
export const MAX_QUOTAS_FILE_BYTES = 1024 * 1024;
/** Tenants one file may name. */
export const MAX_TENANT_POLICIES = 10_000;

const count = (max: number) => z.number().int().min(1).max(max);
const usd = z.number().finite().gt(0).max(1_000_000_000);

const policySchema = z
  .object({
    per: z.enum(['subject', 'tenant']).default('subject'),
    requestsPerMinute: count(10_000_000).optional(),
    upstreamCallsPerMinute: count(10_000_000).optional(),
    tokensPerDay: count(1_000_000_000_000).optional(),
    usdPerDay: usd.optional(),
    usdPerMonth: usd.optional(),
    maxConcurrentStreams: count(1_000_000).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    default: policySchema.optional(),
    tenants: z
      .record(z.string().regex(TENANT_PATTERN, { message: 'a tenant name of 1 to 64 letters, digits or . _ : -' }), policySchema)
      .default({})
      .refine((tenants) => Object.keys(tenants).length <= MAX_TENANT_POLICIES, {
        message: `at most ${MAX_TENANT_POLICIES} tenants`,
      }),
  })
  .strict();

/** A quota file that cannot be used: start-up stops, naming the file and what is wrong. */
export class QuotaFileError extends Error {
  constructor(file: string, problem: string) {
    super(`QUOTAS_FILE ${file}: ${problem}`);
    this.name = 'QuotaFileError';
  }
}

/**
 * Parses a policy document: JSON, or YAML with the same shape (YAML is a superset of JSON,
 * so one parser reads both; aliases are refused, so a small file cannot expand into a large
 * one).
 */
export function parsePolicies(text: string, file = '(inline)'): QuotaPolicies {
  let value: unknown;
  try {
    // Loaded only when a quota file is read (`require`: see the simulator's loading in src/app.ts).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parse: parseYaml } = require('yaml') as typeof YamlModule;
    value = parseYaml(text, { maxAliasCount: 0, prettyErrors: false });
  } catch (error) {
    throw new QuotaFileError(file, `not JSON or YAML (${(error as Error).message.split('\n')[0]})`);
  }
  const parsed = fileSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new QuotaFileError(file, `${where}: ${issue.message}`);
  }
  return parsed.data;
}

/** Reads and checks QUOTAS_FILE. */
export function loadPolicies(file: string): QuotaPolicies {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_QUOTAS_FILE_BYTES) throw new QuotaFileError(file, `larger than ${MAX_QUOTAS_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof QuotaFileError) throw error;
    throw new QuotaFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parsePolicies(text, file);
}

/** The policy for a tenant: its own, else the default; undefined = not limited. */
export function policyFor(policies: QuotaPolicies, tenant: string): QuotaPolicy | undefined {
  return Object.hasOwn(policies.tenants, tenant) ? policies.tenants[tenant] : policies.default;
}
