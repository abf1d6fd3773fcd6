import { TENANT_PATTERN, SCOPES, requireScopes, type Caller } from '../../auth';
import { BadUserInputError } from '../../errors';
import type { QuotaAccount, UsageReport } from '../../quotas';
import { addressSubject } from '../../quotas';
import type { QuotaCounter, QuotaUsage } from '../generated/types';
import type { GraphQLContext } from '../context';

/** Longest `subject` argument the `usage` query takes (a token's `sub` is far shorter). */
export const MAX_USAGE_SUBJECT_LENGTH = 256;

/**
 * `Query.usage`: the caller's own quota figures, or, for `gateway:admin`, another tenant's
 * (and subject's). Arguments are checked before any counter is read.
 */
export async function usage(args: { tenant?: string | null; subject?: string | null }, context: GraphQLContext): Promise<QuotaUsage> {
  const { caller, services } = context;
  const own = ownSubject(caller);
  const tenant = args.tenant ?? caller.tenant;
  const subject = args.subject ?? (tenant === caller.tenant ? own : undefined);
  if (tenant !== caller.tenant || subject !== own) requireScopes(caller, SCOPES.admin);
  if (!TENANT_PATTERN.test(tenant)) throw new BadUserInputError('tenant: expected 1 to 64 letters, digits or . _ : -', 'tenant');
  if (subject !== undefined && (subject.length === 0 || subject.length > MAX_USAGE_SUBJECT_LENGTH)) {
    throw new BadUserInputError(`subject: expected 1 to ${MAX_USAGE_SUBJECT_LENGTH} characters`, 'subject');
  }
  const account: QuotaAccount | undefined =
    tenant === caller.tenant && subject === own ? context.quota : services.quotas?.accountOf(tenant, subject);
  if (!account) return unlimited(tenant, subject, services.quotas?.store.shared ?? false);
  if (account.per === 'subject' && subject === undefined) {
    throw new BadUserInputError(`tenant ${tenant}'s policy counts per subject: name the subject`, 'subject');
  }
  return toQuotaUsage(await account.usage());
}

/** The subject the caller's own counters are kept under (an address caller's /64 for IPv6). */
function ownSubject(caller: Caller): string {
  return caller.kind === 'token' ? caller.subject : addressSubject(caller.subject);
}

function unlimited(tenant: string, subject: string | undefined, shared: boolean): QuotaUsage {
  return {
    tenant,
    subject: subject ?? null,
    per: null,
    limited: false,
    shared,
    requestsPerMinute: null,
    upstreamCallsPerMinute: null,
    tokensPerDay: null,
    usdPerDay: null,
    usdPerMonth: null,
    maxConcurrentStreams: null,
  };
}

function toQuotaUsage(report: UsageReport): QuotaUsage {
  const byName = new Map(report.limits.map((reading) => [reading.limit, reading]));
  const counter = (name: string): QuotaCounter | null => {
    const reading = byName.get(name as never);
    if (!reading) return null;
    return { limit: reading.limit, max: reading.max, used: reading.used, remaining: reading.remaining, resetsInMs: reading.resetsInMs ?? null };
  };
  return {
    tenant: report.tenant,
    subject: report.subject ?? null,
    per: report.per === 'tenant' ? 'TENANT' : 'SUBJECT',
    limited: report.limited,
    shared: report.shared,
    requestsPerMinute: counter('requestsPerMinute'),
    upstreamCallsPerMinute: counter('upstreamCallsPerMinute'),
    tokensPerDay: counter('tokensPerDay'),
    usdPerDay: counter('usdPerDay'),
    usdPerMonth: counter('usdPerMonth'),
    maxConcurrentStreams: counter('maxConcurrentStreams'),
  };
}
