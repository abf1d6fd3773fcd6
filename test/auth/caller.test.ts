import { anonymousCaller, hasScope, requireScopes, SCOPES, unauthenticatedCaller, type Caller } from '../../src/auth/caller';
import { ErrorCode, ForbiddenError, GatewayError, UnauthenticatedError } from '../../src/errors';

const reader: Caller = { kind: 'token', subject: 'alice', tenant: 'acme', scopes: new Set([SCOPES.read]), expiresAt: 1 };

describe('callers', () => {
  it('gives an anonymous caller (AUTH_MODE=none) every scope, tenant default, the address as subject', () => {
    const caller = anonymousCaller('203.0.113.7');
    expect(caller).toMatchObject({ kind: 'anonymous', subject: '203.0.113.7', tenant: 'default' });
    for (const scope of Object.values(SCOPES)) expect(hasScope(caller, scope)).toBe(true);
  });

  it('gives an unauthenticated caller (jwt, no credentials) no scope, tenant default', () => {
    const caller = unauthenticatedCaller('203.0.113.7');
    expect(caller).toMatchObject({ kind: 'unauthenticated', subject: '203.0.113.7', tenant: 'default' });
    expect(caller.scopes.size).toBe(0);
  });

  it('checks scopes exactly', () => {
    expect(hasScope(reader, SCOPES.read)).toBe(true);
    expect(hasScope(reader, SCOPES.stream)).toBe(false);
    expect(hasScope(reader, 'completions')).toBe(false);
  });
});

describe('requireScopes', () => {
  it('passes a caller holding every scope', () => {
    expect(() => requireScopes(reader, SCOPES.read)).not.toThrow();
    expect(() => requireScopes(anonymousCaller('a'), SCOPES.admin, SCOPES.write)).not.toThrow();
  });

  it('answers a caller without credentials UNAUTHENTICATED, with a challenge that carries no error code', () => {
    const error = catchError(() => requireScopes(unauthenticatedCaller('a'), SCOPES.read));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error).toMatchObject({ code: ErrorCode.UNAUTHENTICATED, httpStatus: 401, reason: 'missing credentials', wwwAuthenticate: 'Bearer' });
  });

  it('answers a caller lacking scopes FORBIDDEN, naming only the missing ones', () => {
    const error = catchError(() => requireScopes(reader, SCOPES.read, SCOPES.stream, SCOPES.write));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({
      code: ErrorCode.FORBIDDEN,
      httpStatus: 403,
      requiredScopes: [SCOPES.stream, SCOPES.write],
      extensions: { requiredScopes: 'completions:stream completions:write' },
      wwwAuthenticate: 'Bearer error="insufficient_scope", scope="completions:stream completions:write"',
    });
  });
});

function catchError(run: () => void): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
