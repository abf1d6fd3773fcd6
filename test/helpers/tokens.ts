import { SignJWT } from 'jose';

/** An HS256 bearer token as the gateway's AUTH_MODE=jwt verifies it: issued 10 s ago, valid for 10 minutes. */
export async function signTestToken(options: { secret: string; issuer: string; audience: string; sub: string; tenant: string; scope: string }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: options.scope, tenant: options.tenant })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject(options.sub)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(options.secret));
}
