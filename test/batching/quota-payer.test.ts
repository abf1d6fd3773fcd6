import { CompletionService, type QuotaHold, type QuotaPayer } from '../../src/batching/completion-service';
import type { CompletionRequest } from '../../src/deepseek/types';
import { ErrorCode, QuotaExceededError } from '../../src/errors';
import { RequestLedger } from '../../src/telemetry/ledger';
import { silentLogger } from '../../src/telemetry/logger';
import { chatRequest, FakeUpstream, RecordingCache, settle } from './fakes';

/**
 * A quota account whose reservations the test decides: each `reserve` waits until the test
 * admits or refuses it, and what the call then does to its hold is recorded.
 */
class ScriptedPayer implements QuotaPayer {
  readonly reserved: CompletionRequest[] = [];
  readonly settled: Array<{ model: string }> = [];
  readonly released: number[] = [];
  private pending: Array<{ admit(): void; refuse(): void }> = [];

  constructor(readonly key: string) {}

  reserve(request: CompletionRequest): Promise<QuotaHold | undefined> {
    this.reserved.push(request);
    return new Promise((resolve, reject) => {
      const hold: QuotaHold = {
        settle: (result) => void this.settled.push({ model: result.model }),
        release: (bytes = 0) => void this.released.push(bytes),
      };
      this.pending.push({
        admit: () => resolve(hold),
        refuse: () => reject(new QuotaExceededError('tokensPerDay', `budget of ${this.key} crossed`, 5_000, this.key)),
      });
    });
  }

  admitNext(): void {
    this.pending.shift()!.admit();
  }

  refuseNext(): void {
    this.pending.shift()!.refuse();
  }
}

function setup() {
  const upstream = new FakeUpstream();
  const service = new CompletionService({ cache: new RecordingCache(), upstream, logger: silentLogger(), batching: { windowMs: 0, maxSize: 100 } });
  return { upstream, service };
}

describe('upstream calls paid for by a quota account', () => {
  it('reserves before calling and settles with the result: the refused call never reaches upstream', async () => {
    const { upstream, service } = setup();
    const payer = new ScriptedPayer('poor');
    const ledger = new RequestLedger();
    const load = service.createLoaders({ quota: payer, ledger }).completion.load({ request: chatRequest('too dear'), policy: 'USE' });
    await settle();
    expect(payer.reserved).toHaveLength(1);
    expect(upstream.calls).toHaveLength(0); // nothing is sent while the reservation is open
    payer.refuseNext();
    await expect(load).rejects.toMatchObject({ code: ErrorCode.BUDGET_EXCEEDED, limit: 'tokensPerDay' });
    expect(upstream.calls).toHaveLength(0);
    // The refused call is not counted as one in the operation's cost.
    expect(ledger.finish().upstreamCalls).toBe(0);

    const admitted = service.createLoaders({ quota: payer }).completion.load({ request: chatRequest('affordable'), policy: 'USE' });
    await settle();
    payer.admitNext();
    await expect(admitted).resolves.toMatchObject({ cached: false });
    expect(upstream.calls).toHaveLength(1);
    expect(payer.settled).toEqual([{ model: 'deepseek-flash' }]);
    expect(payer.released).toEqual([]);
  });

  it('releases the reservation when the call fails', async () => {
    const { upstream, service } = setup();
    const payer = new ScriptedPayer('a');
    upstream.failFor.set('breaks', new Error('boom'));
    const load = service.createLoaders({ quota: payer }).completion.load({ request: chatRequest('breaks'), policy: 'USE' });
    await settle();
    payer.admitNext();
    await expect(load).rejects.toThrow();
    expect(payer.released).toEqual([0]);
    expect(payer.settled).toEqual([]);
  });

  it('charges a coalesced call once, to its starter; a joiner is not refused by the starter\'s budget', async () => {
    const { upstream, service } = setup();
    const poor = new ScriptedPayer('poor');
    const rich = new ScriptedPayer('rich');
    const same = { request: chatRequest('same prompt'), policy: 'USE' as const };
    const first = service.createLoaders({ quota: poor }).completion.load(same);
    await settle();
    // Joins the call `poor` started while its reservation is open.
    const joiner = service.createLoaders({ quota: rich }).completion.load(same);
    const sameAccount = service.createLoaders({ quota: poor }).completion.load(same);
    await settle();
    expect(service.stats()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 2 });
    expect(rich.reserved).toHaveLength(0);

    poor.refuseNext();
    await expect(first).rejects.toMatchObject({ code: ErrorCode.BUDGET_EXCEEDED });
    // The same account's joiner shares the refusal: it would have been refused itself.
    await expect(sameAccount).rejects.toMatchObject({ code: ErrorCode.BUDGET_EXCEEDED });
    await settle();
    // The other account's load is placed again and starts the call on its own account.
    expect(rich.reserved).toHaveLength(1);
    rich.admitNext();
    await expect(joiner).resolves.toMatchObject({ cached: false });
    expect(upstream.calls).toHaveLength(1);
    expect(rich.settled).toHaveLength(1);
    expect(poor.settled).toHaveLength(0);
  });

  it('a load without any quota account joins a refused call and is placed again too', async () => {
    const { upstream, service } = setup();
    const poor = new ScriptedPayer('poor');
    const same = { request: chatRequest('free rider'), policy: 'USE' as const };
    const first = service.createLoaders({ quota: poor }).completion.load(same);
    await settle();
    const unlimited = service.createLoaders().completion.load(same);
    await settle();
    poor.refuseNext();
    await expect(first).rejects.toBeInstanceOf(QuotaExceededError);
    await expect(unlimited).resolves.toMatchObject({ cached: false });
    expect(upstream.calls).toHaveLength(1);
  });
});
