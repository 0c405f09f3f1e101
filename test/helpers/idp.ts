/**
 * An identity provider on loopback (`auth.jwt.jwks`, §3): its tokens carry claims of the test's choosing, of
 * any JSON type, as an external provider's would (Citadel's own tokens carry only the user's fields).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { CitadelConfig } from "citadel";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { bearer } from "./auth.js";
import { startServer, type TestResponse, type TestServer } from "./server.js";

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

type Permissions = NonNullable<NonNullable<NonNullable<CitadelConfig["auth"]>["roles"]>[string]["permissions"]>;

/** A server whose callers come with the provider's "viewer" tokens, carrying the claims each request names. */
export interface ViewerServer {
  server: TestServer;
  /** GET `path` as a viewer whose token carries `claims` */
  get(path: string, claims: Record<string, unknown>): Promise<TestResponse>;
  /** The `name`s a viewer with `claims` lists of `entity`, or the status when it is not 200. */
  names(entity: string, claims: Record<string, unknown>): Promise<string[] | number>;
  close(): Promise<void>;
}

/** Start a provider and a server on `data` whose one role, "viewer", holds `permissions`. */
export async function startViewerServer(data: CitadelConfig["data"], permissions: Permissions): Promise<ViewerServer> {
  const idp = await startIdp();
  try {
    const server = await startServer({
      data,
      auth: { enabled: true, jwt: { jwks: idp.jwks }, roles: { viewer: { permissions } } },
    });
    const get = async (path: string, claims: Record<string, unknown>) =>
      server.request("GET", path, undefined, bearer(await idp.token("viewer", claims)));
    return {
      server,
      get,
      names: async (entity, claims) => {
        const res = await get(`/api/data/${entity}`, claims);
        return res.status === 200 ? res.body.data.map((r: { name: string }) => r.name) : res.status;
      },
      close: async () => {
        await server.close();
        await idp.close();
      },
    };
  } catch (error) {
    await idp.close();
    throw error;
  }
}
