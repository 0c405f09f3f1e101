/**
 * `citadel/adapter/edge` under workerd (11.3): the docs' Step 6 worker (examples/edge) on a libSQL server over
 * HTTP: register, login, filtered lists, owner updates, with rows checked in the server; users move between a
 * Node server and the worker on one users table; the bundle carries no Node-only driver or server.
 */
import { type Client, createClient } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeRuntime } from "../../adapters/node/runtime.js";
import step6 from "../../examples/access/step6-public-and-owner.js";
import { type CitadelApp, createApp } from "../../src/index.js";
import { type Sqld, startSqld } from "../helpers/engines.js";
import { type Bundle, bundleWorker, startWorkerd, type Workerd } from "./workerd.js";

const SECRET = "an-edge-test-secret-that-is-at-least-32-bytes-long";
const PASSWORD = "pass1234";
/** What must stay out of a worker: native modules, Node's drivers and server, and the Node adapter. */
const NODE_ONLY =
  /(^|\/)(node_modules\/(better-sqlite3|argon2|@hono\/node-server|pg|@libsql\/kysely-libsql)|adapters\/node)\//;

// biome-ignore lint/suspicious/noExplicitAny: response bodies are arbitrary JSON
type Body = any;

describe("the edge adapter under workerd: Step 6 on a libSQL server (11.3)", () => {
  let sqld: Sqld;
  let bundle: Bundle;
  let worker: Workerd;
  let db: Client;
  let node: CitadelApp | undefined;

  beforeAll(async () => {
    [sqld, bundle] = await Promise.all([startSqld(), bundleWorker("examples/edge/worker.ts")]);
    worker = await startWorkerd(bundle, { LIBSQL_URL: sqld.url, CITADEL_JWT_SECRET: SECRET });
    db = createClient({ url: sqld.url });
  }, 60_000);
  afterAll(async () => {
    db?.close();
    await node?.close();
    await worker?.close();
    await sqld?.close();
    bundle?.remove();
  });

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${worker.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: Body;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return {
      status: res.status,
      body: json,
      text,
      where: `${method} ${path} → ${res.status} ${text}\n${worker.output()}`,
    };
  };
  const expectStatus = async (status: number, request: Promise<Awaited<ReturnType<typeof call>>>) => {
    const res = await request;
    expect(res.status, res.where).toBe(status);
    return res.body;
  };
  const rows = async (sql: string) => (await db.execute(sql)).rows.map((row) => ({ ...row }));
  const ids = (body: Body) => (body.data as { id: number }[]).map((row) => row.id).sort((a, b) => a - b);

  it("the worker's bundle carries no native module, Node driver or Node server", () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.filter((path) => NODE_ONLY.test(path))).toEqual([]);
    expect(inputs.some((path) => path.includes("node_modules/@libsql/client/lib-esm/web.js"))).toBe(true);
    expect(inputs.some((path) => path.includes("node_modules/hash-wasm/"))).toBe(true);
    expect(bundle.modules.map((m) => m.name).sort()).toEqual(["argon2.wasm", "blake2b.wasm", "worker.js"]);
  });

  const tokens: Record<string, string> = {};
  const userIds: Record<string, number> = {};

  it("register and login on the worker; the hash in the users table is argon2id in Node's PHC format (3.1)", async () => {
    for (const name of ["alice", "bob"]) {
      const registered = await expectStatus(
        201,
        call("POST", "/api/auth/password/register", undefined, { email: `${name}@example.com`, password: PASSWORD }),
      );
      expect(registered.user).toMatchObject({ email: `${name}@example.com`, role: "user" });
      userIds[name] = registered.user.id;
      const login = await expectStatus(
        200,
        call("POST", "/api/auth/password/login", undefined, { email: `${name}@example.com`, password: PASSWORD }),
      );
      tokens[name] = login.token;
    }
    await expectStatus(
      401,
      call("POST", "/api/auth/password/login", undefined, { email: "alice@example.com", password: "wrong-password" }),
    );
    const [alice] = await rows("SELECT password_hash FROM users WHERE email = 'alice@example.com'");
    expect(alice?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  });

  const posts: Record<string, number> = {};

  it("users create posts naming themselves as author, as Step 6 expects", async () => {
    const create = async (who: string, title: string, status: string) =>
      (
        await expectStatus(
          201,
          call("POST", "/api/data/posts", tokens[who], { title, status, author_id: userIds[who] }),
        )
      ).data;
    const a1 = await create("alice", "A public", "published");
    const a2 = await create("alice", "A draft", "draft");
    const b1 = await create("bob", "B public", "published");
    const b2 = await create("bob", "B secret draft", "draft");
    Object.assign(posts, { pubA: a1.id, draftA: a2.id, pubB: b1.id, draftB: b2.id });
    expect(a2.author_id).toBe(userIds.alice);
    expect(await rows("SELECT title, author_id FROM posts ORDER BY id")).toEqual([
      { title: "A public", author_id: userIds.alice },
      { title: "A draft", author_id: userIds.alice },
      { title: "B public", author_id: userIds.bob },
      { title: "B secret draft", author_id: userIds.bob },
    ]);
  });

  it("filtered lists: anonymous sees published posts, alice also her drafts, never bob's (4.5)", async () => {
    const anonymous = await expectStatus(200, call("GET", "/api/data/posts"));
    expect(ids(anonymous)).toEqual([posts.pubA, posts.pubB]);
    const alice = await expectStatus(200, call("GET", "/api/data/posts", tokens.alice));
    expect(ids(alice)).toEqual([posts.pubA, posts.draftA, posts.pubB]);
    expect(JSON.stringify(alice)).not.toContain("B secret");
    const where = encodeURIComponent(JSON.stringify({ $or: [{ status: "draft" }, { title: { $like: "B*" } }] }));
    const filtered = await expectStatus(200, call("GET", `/api/data/posts?where=${where}`, tokens.alice));
    expect(ids(filtered)).toEqual([posts.draftA, posts.pubB]);
    await expectStatus(404, call("GET", `/api/data/posts/${posts.draftB}`, tokens.alice));
  });

  it("owner update: alice edits her post (200); bob's published post is 403 and bob's draft 404, nothing written (4.5, 4.9)", async () => {
    const edited = await expectStatus(
      200,
      call("PATCH", `/api/data/posts/${posts.draftA}`, tokens.alice, { title: "A draft edited" }),
    );
    expect(edited.data).toMatchObject({ id: posts.draftA, title: "A draft edited" });
    const before = await rows("SELECT id, title, author_id FROM posts ORDER BY id");
    await expectStatus(403, call("PATCH", `/api/data/posts/${posts.pubB}`, tokens.alice, { title: "hijacked" }));
    await expectStatus(404, call("PATCH", `/api/data/posts/${posts.draftB}`, tokens.alice, { title: "hijacked" }));
    await expectStatus(403, call("PATCH", `/api/data/posts/${posts.draftA}`, tokens.alice, { author_id: userIds.bob }));
    expect(await rows("SELECT id, title, author_id FROM posts ORDER BY id")).toEqual(before);
    expect(before.find((row) => row.id === posts.draftA)?.title).toBe("A draft edited");
  });

  it("one users table for Node and edge: a user made on Node logs in on the worker, and the other way round (11.3)", async () => {
    node = await createApp({
      connection: { url: sqld.url },
      config: { ...step6.config, auth: { ...step6.config?.auth, jwt: { secret: SECRET } } },
      runtime: nodeRuntime,
    });
    await node.module.auth.createUser({ email: "carol@example.com", password: PASSWORD, role: "user" });
    const carol = await expectStatus(
      200,
      call("POST", "/api/auth/password/login", undefined, { email: "carol@example.com", password: PASSWORD }),
    );
    expect(carol.user.email).toBe("carol@example.com");
    // alice registered on the worker (WebAssembly argon2id); Node's native argon2 verifies her hash
    const login = await node.fetch(
      new Request("http://node.test/api/auth/password/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "alice@example.com", password: PASSWORD }),
      }),
    );
    expect(login.status, await login.clone().text()).toBe(200);
    // a token from the worker is accepted by the Node server (same secret, same database)
    const mine = await node.fetch(
      new Request("http://node.test/api/data/posts", { headers: { authorization: `Bearer ${tokens.alice}` } }),
    );
    expect(ids(await mine.json())).toEqual([posts.pubA, posts.draftA, posts.pubB]);
  });

  it("a worker that cannot start answers 503 without the reason, logs the reason, and tries again on the next request", async () => {
    const broken = await startWorkerd(bundle, { LIBSQL_URL: "file:data.db", CITADEL_JWT_SECRET: SECRET });
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await fetch(`${broken.url}/api/data/posts`);
        expect(res.status, broken.output()).toBe(503);
        expect(await res.json()).toEqual({ error: "the server could not start" });
      }
      const reasons = broken.output().match(/citadel: cannot start: connection\.url: .*use a libSQL server over HTTP/g);
      expect(reasons?.length, broken.output()).toBeGreaterThanOrEqual(2);
    } finally {
      await broken.close();
    }
  });
});
