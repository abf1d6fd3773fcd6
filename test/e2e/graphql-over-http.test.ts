import { auditServer } from 'graphql-http';
import type { Gateway } from '../../src/app';
import { startTestGateway } from '../helpers/gateway';

describe('GraphQL over HTTP conformance (graphql-http audit)', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('passes every required audit (no errors)', async () => {
    const results = await auditServer({ url: gateway.graphqlUrl });
    const errors = results.filter((result) => result.status === 'error');
    expect(errors.map((e) => `${e.id} ${e.name}: ${'reason' in e ? e.reason : ''}`)).toEqual([]);
    // Sanity: the audit actually ran its suite.
    expect(results.length).toBeGreaterThan(50);
    expect(results.filter((result) => result.status === 'ok').length).toBeGreaterThan(40);
  });
});
