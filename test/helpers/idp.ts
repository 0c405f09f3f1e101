/**
 * An identity provider on loopback (`auth.jwt.jwks`, §3): its tokens carry claims of the test's choosing, of
 * any JSON type, as an external provider's would (Citadel's own tokens carry only the user's fields).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export interface TestIdp {
  /** the `auth.jwt.jwks` settings naming it, with `app_role` as the role claim */
  jwks: { url: string; issuer: string; audience: string; role_claim: string };
  /** A token of role `role` (the `app_role` claim) carrying `claims`. */
  token(role: string, claims?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/** Start an identity provider serving one RS256 key. */
export async function startIdp(): Promise<TestIdp> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k", alg: "RS256", use: "sig" };
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const jwks = { url: `http://127.0.0.1:${port}/jwks.json`, issuer: "https://idp.test", audience: "citadel" };
  return {
    jwks: { ...jwks, role_claim: "app_role" },
    token: (role, claims = {}) =>
      new SignJWT({ ...claims, app_role: role })
        .setProtectedHeader({ alg: "RS256", kid: "k" })
        .setSubject("idp|1")
        .setIssuer(jwks.issuer)
        .setAudience(jwks.audience)
        .setIssuedAt()
        .setExpirationTime("10m")
        .sign(privateKey),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
