/** Tokens from an external identity provider, verified against its JWKS served on loopback (3.2). */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { authConfig, bearer, expectError, PASSWORD, userWithToken } from "./helpers.js";

const ISSUER = "https://idp.example.test";
const AUDIENCE = "citadel-app";
const KID = "test-key-1";

describe("JWKS verification (3.2)", () => {
  let idp: Server;
  let jwksHits = 0;
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  let server: TestServer;

  const external = (
    claims: Record<string, unknown>,
    opts: { key?: CryptoKey; iss?: string; aud?: string; exp?: string | number } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: KID })
      .setSubject("idp|42")
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? "10m")
      .sign(opts.key ?? privateKey);
  const me = (token: string) => server.request("GET", "/api/auth/me", undefined, bearer(token));

  beforeAll(async () => {
    ({ privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true }));
    const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: "RS256", use: "sig" };
    idp = createServer((req, res) => {
      jwksHits++;
      res.writeHead(req.url === "/.well-known/jwks.json" ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => idp.listen(0, "127.0.0.1", resolve));
    const { port } = idp.address() as AddressInfo;
    server = await startServer(
      authConfig({
        jwt: {
          jwks: {
            url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
            issuer: ISSUER,
            audience: AUDIENCE,
            role_claim: "app_role",
          },
        },
      }),
    );
  });
  afterAll(async () => {
    await server.close();
    await new Promise((resolve) => idp.close(resolve));
  });

  it("a token signed by the provider's key is accepted, with the role from the configured claim (3.2)", async () => {
    const token = await external({ email: "ext@example.com", app_role: "editor" });
    const res = await me(token);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user).toMatchObject({ sub: "idp|42", email: "ext@example.com", role: "editor" });
    expect(jwksHits).toBeGreaterThan(0);
    expect((await server.request("GET", "/api/data/posts", undefined, bearer(token))).status).toBe(200);
  });

  it("a token without the role claim is authenticated with no role (3.2, 4.1)", async () => {
    const res = await me(await external({ email: "norole@example.com" }));
    expect(res.status, res.text).toBe(200);
    expect(res.body.user.role).toBeUndefined();
  });

  it("a role claim naming no configured role is 401 (3.2)", async () => {
    expectError(await me(await external({ app_role: "superuser" })), 401, "unauthorized");
  });

  it("a token signed by another key is 401 (3.2)", async () => {
    const other = await generateKeyPair("RS256");
    expectError(await me(await external({ app_role: "editor" }, { key: other.privateKey })), 401, "unauthorized");
  });

  it("a token with the wrong issuer or audience, or expired, is 401 (3.2)", async () => {
    expectError(await me(await external({ app_role: "editor" }, { iss: "https://evil.test" })), 401, "unauthorized");
    expectError(await me(await external({ app_role: "editor" }, { aud: "another-app" })), 401, "unauthorized");
    const now = Math.floor(Date.now() / 1000);
    expectError(await me(await external({ app_role: "editor" }, { exp: now - 3600 })), 401, "unauthorized");
  });

  it("the provider's public key used as an HMAC secret (algorithm confusion) is 401 (3.2)", async () => {
    const pem = await exportSPKI(publicKey);
    const confused = await new SignJWT({ app_role: "admin" })
      .setProtectedHeader({ alg: "HS256", kid: KID })
      .setSubject("idp|42")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(pem));
    expectError(await me(confused), 401, "unauthorized");
  });

  it("our own tokens keep working beside the provider's (3.2)", async () => {
    const local = await userWithToken(server, "local@example.com");
    expect((await me(local.token)).body.user.email).toBe("local@example.com");
  });

  it("an external account cannot use the password change route", async () => {
    const token = await external({ email: "ext@example.com", app_role: "editor" });
    const res = await server.request(
      "POST",
      "/api/auth/password/change",
      { password: PASSWORD, new_password: "whatever-long" },
      bearer(token),
    );
    expectError(res, 400, "bad_request");
  });

  it("nested and list role claims are read too (3.2)", async () => {
    const { port } = idp.address() as AddressInfo;
    const nested = await startServer(
      authConfig({
        jwt: {
          jwks: {
            url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
            issuer: ISSUER,
            audience: AUDIENCE,
            role_claim: "realm.roles",
          },
        },
      }),
    );
    try {
      const token = await external({ realm: { roles: ["offline_access", "admin"] } });
      const res = await nested.request("GET", "/api/auth/me", undefined, bearer(token));
      expect(res.status, res.text).toBe(200);
      expect(res.body.user.role).toBe("admin");
    } finally {
      await nested.close();
    }
  });
});
