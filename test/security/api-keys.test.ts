/**
 * API key secrecy (§5.2, §5.4, §5.6): the full key is in the create and rotate answers and nowhere else — no
 * other response, list, error or log line holds a key or its SHA-256 digest — and the table stores only the
 * digest. Every request runs with an `options.log` that records what the server logs.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apikey, createKey, expectInvalidKey, keysConfig, PASSWORD } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

describe("API keys never leak (5.2, 5.4)", () => {
  let server: TestServer;
  const logged: string[] = [];
  const seen: TestResponse[] = [];
  /** every full key handed out, by the create and rotate answers */
  const keys: string[] = [];
  let admin: Record<string, string>;

  const request = async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await server.request(method, path, body, headers);
    seen.push(res);
    return res;
  };

  beforeAll(async () => {
    server = await startServer(keysConfig({ require: false }), {
      options: {
        log: (message, error) =>
          logged.push(`${message} ${error instanceof Error ? error.stack : String(error ?? "")}`),
        seed: async ({ app }) => {
          await app.module.auth.createUser({ email: "root@test.com", password: PASSWORD, role: "admin" });
        },
      },
    });
    admin = bearer(await login(server, "root@test.com", PASSWORD));

    const pk = await createKey(server, admin, {
      name: "web",
      kind: "publishable",
      allowed_origins: ["https://a.example"],
    });
    const sk = await createKey(server, admin, { name: "backend", kind: "secret", allowed_ips: ["127.0.0.1"] });
    const doomed = await createKey(server, admin, { name: "doomed", kind: "secret" });
    keys.push(pk.key, sk.key, doomed.key);
    const rotated = await server.request("POST", `/api/system/keys/${pk.id}/rotate`, { grace_seconds: 60 }, admin);
    expect(rotated.status, rotated.text).toBe(201);
    keys.push(rotated.body.data.key);

    // everything after this point must be free of key material
    await request("GET", "/api/system/keys", undefined, admin);
    await request("GET", "/api/system/keys", undefined, apikey(sk.key));
    await request("GET", "/api/data/posts", undefined, { ...apikey(pk.key), origin: "https://a.example" });
    await request("GET", "/api/data/posts", undefined, { ...apikey(pk.key), origin: "https://b.example" });
    await request("GET", "/api/data/posts", undefined, { ...apikey(sk.key), origin: "https://page.example" });
    await request("GET", "/api/data/posts", undefined, {
      ...bearer(sk.key),
      "sec-fetch-mode": "cors",
      "sec-fetch-site": "cross-site",
    });
    await request("GET", "/api/data/posts", undefined, apikey(`${sk.key}x`));
    await request("GET", "/api/data/posts", undefined, apikey(sk.key.slice(0, -2)));
    await request("GET", "/api/data/posts", undefined, { apikey: pk.key, authorization: `Bearer ${sk.key}` });
    await request("GET", "/api/data/posts", undefined, { ...apikey(pk.key), authorization: "Bearer not-a-jwt" });
    await request("POST", "/api/system/keys", { name: "x", kind: "secret", allowed_ips: [sk.key] }, admin);
    await request("POST", "/api/system/keys", { name: "x", kind: "publishable", allowed_origins: [pk.key] }, admin);
    await request("POST", "/api/system/keys", { name: "x", kind: "secret", [sk.key]: 1 }, admin);
    await request("POST", "/api/system/keys", { name: "x", kind: "secret", expires_at: sk.key }, admin);
    await request("POST", `/api/system/keys/${encodeURIComponent(sk.key)}/rotate`, {}, admin);
    await request("DELETE", `/api/system/keys/${encodeURIComponent(pk.key)}`, undefined, admin);
    await request(
      "POST",
      "/api/system/keys",
      { name: "x", kind: "secret" },
      {
        ...apikey(pk.key),
        origin: "https://a.example",
      },
    );
    await request("DELETE", `/api/system/keys/${doomed.id}`, undefined, admin);
    await request("GET", "/api/data/posts", undefined, apikey(doomed.key));
    await request("GET", "/api/system/keys", undefined, admin);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("the requests above were answered as expected (so the checks below look at real answers)", () => {
    expect(seen.map((r) => r.status)).toEqual([
      200, 200, 200, 401, 401, 401, 401, 401, 401, 401, 400, 400, 400, 400, 404, 404, 403, 200, 401, 200,
    ]);
    for (const res of seen.filter((r) => r.status === 401)) expectInvalidKey(res);
    expect(logged.some((line) => line.includes("refused secret API key"))).toBe(true);
  });

  it("no response, list or error holds a key or its SHA-256 digest (5.2)", () => {
    for (const res of seen)
      for (const key of keys) {
        expect(res.text).not.toContain(key);
        expect(res.text).not.toContain(sha256(key));
        expect(res.text).not.toContain(key.slice(-43));
      }
  });

  it("no log line holds a key or its digest (5.4)", () => {
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged)
      for (const key of keys) {
        expect(line).not.toContain(key);
        expect(line).not.toContain(key.slice(-43));
        expect(line).not.toContain(sha256(key));
      }
  });

  it("lists carry no key and no hash field (5.5)", () => {
    const list = seen[0]!.body.data as Record<string, unknown>[];
    expect(list).toHaveLength(4);
    for (const key of list) {
      expect(key).not.toHaveProperty("key");
      expect(key).not.toHaveProperty("hash");
    }
  });

  it("the table holds the SHA-256 digest and the public prefix, never the key (5.2)", async () => {
    const rows = await server.rows("select * from citadel_api_keys order by id");
    expect(rows).toHaveLength(4);
    rows.forEach((row, i) => {
      expect(row.hash).toBe(sha256(keys[i]!));
      expect(keys[i]!.startsWith(row.prefix)).toBe(true);
      for (const key of keys) expect(JSON.stringify(row)).not.toContain(key.slice(-43));
    });
  });
});
