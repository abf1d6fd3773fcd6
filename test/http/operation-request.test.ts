import type { FastifyRequest } from 'fastify';
import { acceptsEventStream, acceptsMultipartSubscription } from '../../src/http/operation-request';

const withAccept = (accept: string | undefined) => ({ headers: accept === undefined ? {} : { accept } }) as unknown as FastifyRequest;

describe('which streaming protocol a request asks for (Accept)', () => {
  it.each([
    'multipart/mixed;subscriptionSpec="1.0", application/json',
    'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json',
    'application/json, MULTIPART/MIXED; SubscriptionSpec = "1.0"',
  ])('multipart subscriptions: %s', (accept) => {
    expect(acceptsMultipartSubscription(withAccept(accept))).toBe(true);
  });

  it.each([
    undefined,
    '',
    'application/json',
    'text/event-stream',
    'multipart/mixed',
    'multipart/mixed;deferSpec=20220824, application/json',
    'application/json;subscriptionSpec=1.0',
  ])('not multipart subscriptions: %s', (accept) => {
    expect(acceptsMultipartSubscription(withAccept(accept))).toBe(false);
  });

  it('GraphQL over SSE, whatever the case', () => {
    expect(acceptsEventStream(withAccept('Text/Event-Stream'))).toBe(true);
    expect(acceptsEventStream(withAccept('application/json'))).toBe(false);
    expect(acceptsEventStream(withAccept(undefined))).toBe(false);
  });
});
