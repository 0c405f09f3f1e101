/**
 * Managing keys is not a way around the guard (§5.5, §5.1): a role granted `system.keys.manage` but not
 * implicit_allow hands out keys acting as its own role or the default role only — not another role, and not a
 * secret key without a role (which bypasses the guard). A rotation hands out a new key acting as the old one,
 * so it asks the same. implicit_allow admins and trusted callers hand out any key. A refusal writes nothing.
 */
import type { CitadelConfig } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apikey, createKey, keysConfig, mintKey, PASSWORD } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";

function config(): CitadelConfig {
  const base = keysConfig({ require: false });
  const roles = base.auth!.roles!;
  return {
    ...base,
    auth: { ...base.auth, roles: { ...roles, keymaster: { permissions: ["system.keys.manage"] } } },
  };
}

describe("a key manager cannot mint more access than it has (5.5)", () => {
  let server: TestServer;
  let keymaster: Record<string, string>;
  let admin: Record<string, string>;
  const keyCount = async () => Number((await server.rows("SELECT count(*) AS n FROM citadel_api_keys"))[0]!.n);

  beforeAll(async () => {
    server = await startServer(config(), {
      options: {
        seed: async ({ app }) => {
          await app.module.auth.createUser({ email: "km@test.com", password: PASSWORD, role: "keymaster" });
          await app.module.auth.createUser({ email: "root@test.com", password: PASSWORD, role: "admin" });
        },
      },
    });
    keymaster = bearer(await login(server, "km@test.com", PASSWORD));
    admin = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const [what, body, message] of [
    ["a secret key without a role (it would bypass the guard)", { name: "root", kind: "secret" }, "bypasses the guard"],
    ["a secret key acting as admin", { name: "admin", kind: "secret", role: "admin" }, 'the role "admin"'],
    ["a publishable key acting as user", { name: "user", kind: "publishable", role: "user" }, 'the role "user"'],
  ] as const)
    it(`refuses ${what}: 403, nothing created`, async () => {
      const before = await keyCount();
      const res = await mintKey(server, keymaster, body);
      expect(res.status, res.text).toBe(403);
      expect(res.body.error).toMatchObject({ code: "forbidden", permission: "system.keys.manage" });
      expect(res.body.error.message).toContain(message);
      expect(await keyCount()).toBe(before);
    });

  it("hands out keys acting as its own role or the default role", async () => {
    const own = await mintKey(server, keymaster, { name: "own", kind: "secret", role: "keymaster" });
    expect(own.status, own.text).toBe(201);
    // a publishable key without a role acts as publishable_role: the default role "anonymous" here
    const web = await mintKey(server, keymaster, { name: "web", kind: "publishable" });
    expect(web.status, web.text).toBe(201);
    const anon = await server.request("GET", "/api/data/posts", undefined, apikey(web.body.data.key));
    expect(anon.status, anon.text).toBe(200);
  });

  it("cannot rotate an admin's key to obtain it, nor revoke it; the key keeps working and is not replaced", async () => {
    const key = await createKey(server, admin, { name: "backend", kind: "secret" });
    const res = await server.request("POST", `/api/system/keys/${key.id}/rotate`, {}, keymaster);
    expect(res.status, res.text).toBe(403);
    expect(res.text).not.toContain("sk_");
    const listed = await server.request("GET", "/api/system/keys", undefined, admin);
    expect(listed.body.data.find((k: { id: number }) => k.id === key.id)).toMatchObject({ replaced_by: null });
    expect((await server.request("GET", "/api/data/users", undefined, apikey(key.key))).status).toBe(200);
    // nor take it away: a manager revokes only keys it could have handed out
    const revoke = await server.request("DELETE", `/api/system/keys/${key.id}`, undefined, keymaster);
    expect(revoke.status, revoke.text).toBe(403);
    expect((await server.request("GET", "/api/data/users", undefined, apikey(key.key))).status).toBe(200);
  });

  it("an implicit_allow admin and a trusted secret key hand out any key (5.5)", async () => {
    const root = await createKey(server, admin, { name: "root", kind: "secret" });
    const viaKey = await server.request(
      "POST",
      "/api/system/keys",
      { name: "ops", kind: "secret", role: "admin" },
      apikey(root.key),
    );
    expect(viaKey.status, viaKey.text).toBe(201);
    const rotated = await server.request("POST", `/api/system/keys/${viaKey.body.data.id}/rotate`, {}, admin);
    expect(rotated.status, rotated.text).toBe(201);
  });

  it("the keys it may see and revoke are unchanged: listing and revoking its own key work", async () => {
    const own = await createKey(server, keymaster, { name: "mine", kind: "secret", role: "keymaster" });
    expect((await server.request("GET", "/api/system/keys", undefined, keymaster)).status).toBe(200);
    const revoked = await server.request("DELETE", `/api/system/keys/${own.id}`, undefined, keymaster);
    expect(revoked.status, revoked.text).toBe(200);
  });
});
