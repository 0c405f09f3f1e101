/**
 * API keys and tenant isolation together (§5, §6): a key's tenant scopes what it reaches like a user's account
 * does, a key and a user of two accounts never combine, a key's tenant must be an account (and tenancy on),
 * a tenant admin manages its own account's keys and users only, explain shows a key's role and tenant, and no
 * answer but a create or a rotate ever holds a full key or a key's hash.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { PASSWORD, PEOPLE, type Person, seedTenants, tenancyConfig } from "./fixture.js";

/** Every answer of this file, to look for keys and hashes in afterwards (5.2). */
const answers: { what: string; text: string; key?: string }[] = [];
/** Every full key given out. */
const issued = new Set<string>();
/** Every key's hash, read before each server closes. */
const hashes = new Set<string>();

/** A request whose answer is kept for the leak check; `shows` marks a create or rotate, which may hold its key. */
async function ask(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  shows?: "key",
): Promise<TestResponse> {
  const res = await server.request(method, path, body, headers);
  const key = shows && res.status === 201 ? (res.body.data.key as string) : undefined;
  if (key) issued.add(key);
  answers.push({ what: `${method} ${path} -> ${res.status}`, text: res.text, key });
  return res;
}

/** The keys as stored (the tenant as text), but for `last_used_at`, which a request with a key may touch. */
const keyRows = (server: TestServer) =>
  server.rows(
    `SELECT "id", "name", "kind", "role", "tenant", "prefix", "hash", "expires_at", "revoked_at", "replaced_by", "grace_ends_at" FROM citadel_api_keys ORDER BY "id"`,
  );
const userRows = (server: TestServer) =>
  server.rows(`SELECT "id", "email", "role", "account_id", "token_version" FROM users ORDER BY "id"`);
const noteRows = (server: TestServer) =>
  server.rows(`SELECT "id", "title", "slug", "public", "author_id", "account_id" FROM notes ORDER BY "id"`);
const commentRows = (server: TestServer) =>
  server.rows(`SELECT "id", "body", "note_id", "account_id" FROM comments ORDER BY "id"`);

/** Remember the keys' hashes, then close. */
async function close(server: TestServer | undefined) {
  if (!server) return;
  for (const k of await keyRows(server)) hashes.add(k.hash as string);
  await server.close();
}

const ids = (res: TestResponse) => (res.body.data as Row[]).map((r) => r.id as number).sort((a, b) => a - b);
/** A 404 for a key id with the id blanked: another account's key must answer what a missing one does. */
const blank = (res: TestResponse, id: number) => ({ status: res.status, text: res.text.replaceAll(String(id), "#") });

/** One server for the file: the fixture's accounts and people, plus an admin who belongs to no account. */
async function boot() {
  const server = await startServer(tenancyConfig(), {
    options: {
      seed: async (ctx) => {
        await seedTenants(ctx);
        await ctx.app.module.auth.createUser({ email: "nobody@test.com", password: PASSWORD, role: "admin" });
      },
    },
  });
  const as = {} as Record<Person | "nobody", Record<string, string>>;
  for (const [name, p] of Object.entries(PEOPLE)) as[name as Person] = bearer(await login(server, p.email, PASSWORD));
  as.nobody = bearer(await login(server, "nobody@test.com", PASSWORD));
  const accounts = await server.rows(`SELECT "id", "slug" FROM accounts ORDER BY "id"`);
  const A = accounts.find((a) => a.slug === "a")!.id as number;
  const B = accounts.find((a) => a.slug === "b")!.id as number;
  const issue = async (body: Record<string, unknown>) => {
    const created = await createKey(server, as.root, body);
    issued.add(created.key);
    return created;
  };
  const keys = {
    pkA: await issue({ name: "web A", kind: "publishable", tenant: A }),
    pkReaderA: await issue({ name: "web reader A", kind: "publishable", role: "reader", tenant: A }),
    skA: await issue({ name: "backend A", kind: "secret", tenant: A }),
    skB: await issue({ name: "backend B", kind: "secret", tenant: B }),
    sk: await issue({ name: "backend of every account", kind: "secret" }),
  };
  return { server, as, A, B, keys };
}

describe("keys and tenant isolation (5, 6)", () => {
  let server: TestServer;
  let as: Awaited<ReturnType<typeof boot>>["as"];
  let A: number;
  let B: number;
  let keys: Awaited<ReturnType<typeof boot>>["keys"];
  let notesOf: Record<"A" | "B", number[]>;

  beforeAll(async () => {
    ({ server, as, A, B, keys } = await boot());
    const notes = await noteRows(server);
    const of = (account: number) => notes.filter((n) => n.account_id === account).map((n) => n.id as number);
    notesOf = { A: of(A), B: of(B) };
  });
  afterAll(() => close(server));

  const key = (k: { key: string }) => ({ apikey: k.key });

  it("a publishable key of account A sees A's public notes only, as the anonymous role (5.1, 6.1)", async () => {
    for (const headers of [key(keys.pkA), bearer(keys.pkA.key)]) {
      const list = await ask(server, "GET", "/api/data/notes", undefined, headers);
      expect(list.status, list.text).toBe(200);
      expect(list.body.data.map((n: Row) => [n.title, n.account_id])).toEqual([["alice's note", A]]);
      expect(list.body.meta).toMatchObject({ count: 1, total: 1 });
      const count = await ask(server, "GET", "/api/data/notes/count", undefined, headers);
      expect(count.body).toEqual({ data: { count: 1 } });
    }
    // carol's note is public too, but of account B: as missing as a note that does not exist
    const [theirs, missing] = [notesOf.B[0]!, 999_999];
    const other = await ask(server, "GET", `/api/data/notes/${theirs}`, undefined, key(keys.pkA));
    const none = await ask(server, "GET", `/api/data/notes/${missing}`, undefined, key(keys.pkA));
    expect([other.status, other.text]).toEqual([404, none.text]);
    const comments = await ask(server, "GET", "/api/data/comments", undefined, key(keys.pkA));
    expect(comments.status, comments.text).toBe(403);
  });

  it("a key of account A beside a user of account B is 403, whatever the route; beside a user of A the user's role applies (5.1, 6.1)", async () => {
    const [notes, comments] = [await noteRows(server), await commentRows(server)];
    for (const k of [keys.pkA, keys.skA]) {
      const mixed = { ...key(k), ...as.carol };
      const list = await ask(server, "GET", "/api/data/notes", undefined, mixed);
      expect(list.status, list.text).toBe(403);
      expect(list.body.error.code).toBe("forbidden");
      expect(list.text).not.toContain("carol's note");
      const write = await ask(server, "POST", "/api/data/notes", { title: "mixed" }, mixed);
      expect(write.status, write.text).toBe(403);
      const update = await ask(server, "PATCH", `/api/data/notes/${notesOf.B[0]}`, { title: "mixed" }, mixed);
      expect(update.status, update.text).toBe(403);
    }
    expect(await noteRows(server)).toEqual(notes);
    expect(await commentRows(server)).toEqual(comments);

    // alice is a member: she reads bob's private note, which the key alone (anonymous) does not
    const alice = await ask(server, "GET", "/api/data/notes", undefined, { ...key(keys.pkA), ...as.alice });
    expect(alice.status, alice.text).toBe(200);
    expect(ids(alice)).toEqual(notesOf.A);
    const created = await ask(
      server,
      "POST",
      "/api/data/comments",
      { body: "via key", note_id: notesOf.A[0] },
      {
        ...key(keys.pkA),
        ...as.alice,
      },
    );
    expect(created.status, created.text).toBe(201);
    expect(created.body.data.account_id).toBe(A);
  });

  it("a secret key of account A reaches every row of A and none of B's; one without an account reaches all (5.1, 6.1, 6.2)", async () => {
    const notes = await noteRows(server);
    const list = await ask(server, "GET", "/api/data/notes", undefined, key(keys.skA));
    expect(list.status, list.text).toBe(200);
    expect(ids(list)).toEqual(notesOf.A);
    const users = await ask(server, "GET", "/api/data/users", undefined, key(keys.skA));
    expect(users.body.data.map((u: Row) => u.email).sort()).toEqual(["adam@a.test", "alice@a.test", "bob@a.test"]);
    const comments = await ask(server, "GET", "/api/data/comments", undefined, key(keys.skA));
    expect(comments.body.data.every((c: Row) => c.account_id === A)).toBe(true);

    const theirs = notesOf.B[0]!;
    for (const [method, body] of [
      ["GET", undefined],
      ["PATCH", { title: "taken over" }],
      ["DELETE", undefined],
    ] as const) {
      const other = await ask(server, method, `/api/data/notes/${theirs}`, body, key(keys.skA));
      const none = await ask(server, method, "/api/data/notes/999999", body, key(keys.skA));
      expect([other.status, other.text], `${method} another account's note`).toEqual([404, none.text]);
    }
    const many = await ask(
      server,
      "PATCH",
      "/api/data/notes",
      { update: { public: true }, where: { id: theirs } },
      key(keys.skA),
    );
    expect([many.status, many.body.data], many.text).toEqual([200, []]);
    const gone = await ask(server, "DELETE", "/api/data/notes", { account_id: B }, key(keys.skA));
    expect([gone.status, gone.body.data], gone.text).toEqual([200, []]);
    expect(await noteRows(server)).toEqual(notes);

    const created = await ask(server, "POST", "/api/data/notes", { title: "from the backend" }, key(keys.skA));
    expect(created.status, created.text).toBe(201);
    expect(created.body.data.account_id).toBe(A);
    notesOf.A.push(created.body.data.id);

    const all = await ask(server, "GET", "/api/data/notes", undefined, key(keys.sk));
    expect(ids(all)).toEqual([...notesOf.A, ...notesOf.B].sort((a, b) => a - b));
    const one = await ask(server, "GET", `/api/data/notes/${theirs}`, undefined, key(keys.sk));
    expect(one.status, one.text).toBe(200);
  });

  it("a key's tenant must name an account: a missing one is 400 and nothing is stored (5.5, 6)", async () => {
    const before = await keyRows(server);
    const res = await ask(
      server,
      "POST",
      "/api/system/keys",
      { name: "x", kind: "secret", tenant: 999_999 },
      as.root,
      "key",
    );
    expect(res.status, res.text).toBe(400);
    expect(Object.keys(res.body.error.fields)).toEqual(["tenant"]);
    expect(await keyRows(server)).toEqual(before);
  });

  it("a tenant admin's keys belong to its account: another account is 403, superadmin keys are 403 (5.5, 6)", async () => {
    const forced = await ask(server, "POST", "/api/system/keys", { name: "adam's", kind: "secret" }, as.adam, "key");
    expect(forced.status, forced.text).toBe(201);
    expect(forced.body.data.tenant).toBe(A);
    const named = await ask(
      server,
      "POST",
      "/api/system/keys",
      { name: "adam's too", kind: "publishable", tenant: A },
      as.adam,
      "key",
    );
    expect([named.status, named.body.data?.tenant], named.text).toEqual([201, A]);
    // the key works, inside A
    const list = await ask(server, "GET", "/api/data/notes", undefined, { apikey: forced.body.data.key });
    expect(ids(list)).toEqual(notesOf.A);

    const before = await keyRows(server);
    for (const body of [
      { name: "into B", kind: "secret", tenant: B },
      { name: "root", kind: "secret", role: "superadmin" },
      { name: "root web", kind: "publishable", role: "superadmin", tenant: A },
    ]) {
      const res = await ask(server, "POST", "/api/system/keys", body, as.adam, "key");
      expect(res.status, `${JSON.stringify(body)}: ${res.text}`).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
    expect(await keyRows(server)).toEqual(before);
  });

  it("a tenant admin lists its account's keys only, and another account's key is as missing as none (5.5, 6.2)", async () => {
    const list = await ask(server, "GET", "/api/system/keys", undefined, as.adam);
    expect(list.status, list.text).toBe(200);
    const stored = await keyRows(server);
    expect(ids(list)).toEqual(stored.filter((k) => Number(k.tenant) === A).map((k) => k.id));
    expect(list.text).not.toContain(keys.skB.prefix);

    const before = await keyRows(server);
    const theirs = keys.skB.id;
    const missing = 999_999;
    const rotate = await ask(server, "POST", `/api/system/keys/${theirs}/rotate`, {}, as.adam, "key");
    const rotateNone = await ask(server, "POST", `/api/system/keys/${missing}/rotate`, {}, as.adam, "key");
    expect(rotate.status, rotate.text).toBe(404);
    expect(blank(rotate, theirs)).toEqual(blank(rotateNone, missing));
    const revoke = await ask(server, "DELETE", `/api/system/keys/${theirs}`, undefined, as.adam);
    const revokeNone = await ask(server, "DELETE", `/api/system/keys/${missing}`, undefined, as.adam);
    expect(revoke.status, revoke.text).toBe(404);
    expect(blank(revoke, theirs)).toEqual(blank(revokeNone, missing));
    expect(await keyRows(server)).toEqual(before);
    const stillWorks = await ask(server, "GET", "/api/data/notes", undefined, key(keys.skB));
    expect(ids(stillWorks)).toEqual(notesOf.B);

    // its own account's keys it rotates and revokes
    const rotated = await ask(server, "POST", `/api/system/keys/${keys.pkReaderA.id}/rotate`, {}, as.adam, "key");
    expect(rotated.status, rotated.text).toBe(201);
    expect(rotated.body.data).toMatchObject({ tenant: A, role: "reader", kind: "publishable" });
    const revoked = await ask(server, "DELETE", `/api/system/keys/${rotated.body.data.id}`, undefined, as.adam);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.data.revoked_at).not.toBeNull();
  });

  it("a caller without an account has no key management, whatever its role (5.5, 6.1)", async () => {
    const before = await keyRows(server);
    for (const [method, path, body] of [
      ["GET", "/api/system/keys", undefined],
      ["POST", "/api/system/keys", { name: "x", kind: "secret" }],
      ["POST", `/api/system/keys/${keys.skA.id}/rotate`, {}],
      ["DELETE", `/api/system/keys/${keys.skA.id}`, undefined],
    ] as const) {
      const res = await ask(server, method, path, body, as.nobody, "key");
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
    expect(await keyRows(server)).toEqual(before);
  });

  it("explain with ?key= shows the key's role and tenant; a tenant admin explains its own account's keys only (4.15, 5, 6)", async () => {
    const explain = (k: number, headers: Record<string, string>) =>
      ask(server, "GET", `/api/system/explain?key=${k}&permission=data.entity.read&entity=notes`, undefined, headers);
    const pk = await explain(keys.pkA.id, as.root);
    expect(pk.status, pk.text).toBe(200);
    expect(pk.body.data).toMatchObject({
      role: "anonymous",
      key: { id: keys.pkA.id, kind: "publishable" },
      tenant: { field: "account_id", scope: A },
    });
    expect(pk.body.data.where).toContain("account_id");
    expect(pk.body.data.where).toContain("public");
    expect(pk.body.data.parameters).toContain(A);

    const sk = await explain(keys.skB.id, as.root);
    expect(sk.body.data).toMatchObject({ role: null, key: { kind: "secret" }, tenant: { scope: B } });
    const everyAccount = await explain(keys.sk.id, as.root);
    expect(everyAccount.body.data.tenant).toEqual({ field: "account_id", scope: "all tenants" });
    const reader = await ask(
      server,
      "POST",
      "/api/system/keys",
      { name: "reader", kind: "secret", role: "reader", tenant: B },
      as.root,
      "key",
    );
    const readerExplained = await explain(reader.body.data.id, as.root);
    expect(readerExplained.body.data).toMatchObject({ role: "reader", tenant: { scope: B } });

    const own = await explain(keys.skA.id, as.adam);
    expect(own.status, own.text).toBe(200);
    expect(own.body.data.tenant).toEqual({ field: "account_id", scope: A });
    const theirs = await explain(keys.skB.id, as.adam);
    const none = await explain(999_999, as.adam);
    expect(theirs.status, theirs.text).toBe(404);
    expect(blank(theirs, keys.skB.id)).toEqual(blank(none, 999_999));
  });

  it("a tenant admin adds users to its own account only: account_id is the server's, superadmin is refused (6.2, 6.4)", async () => {
    const created = await ask(server, "POST", "/api/data/users", { email: "ann@a.test", role: "member" }, as.adam);
    expect(created.status, created.text).toBe(201);
    expect(created.body.data.account_id).toBe(A);
    const stored = await server.rows(`SELECT "account_id", "role" FROM users WHERE "email" = ?`, "ann@a.test");
    expect(stored).toEqual([{ account_id: A, role: "member" }]);

    const before = await userRows(server);
    for (const [body, status] of [
      [{ email: "bea@a.test", role: "member", account_id: B }, 400],
      [{ email: "bea@a.test", role: "member", account_id: A }, 400],
      [{ email: "bea@a.test", role: "superadmin" }, 403],
    ] as const) {
      const res = await ask(server, "POST", "/api/data/users", body, as.adam);
      expect(res.status, `${JSON.stringify(body)}: ${res.text}`).toBe(status);
      expect(await userRows(server)).toEqual(before);
    }
    const promote = await ask(
      server,
      "PATCH",
      `/api/data/users/${created.body.data.id}`,
      { role: "superadmin" },
      as.adam,
    );
    expect(promote.status, promote.text).toBe(403);
    const move = await ask(server, "PATCH", `/api/data/users/${created.body.data.id}`, { account_id: B }, as.adam);
    expect(move.status, move.text).toBe(400);
    expect(await userRows(server)).toEqual(before);
  });
});

describe("a key's tenant without tenant isolation (5.5, 6)", () => {
  let server: TestServer;
  let root: Record<string, string>;

  beforeAll(async () => {
    const { tenancy: _, ...config } = tenancyConfig();
    server = await startServer(config, {
      options: {
        seed: async (ctx) => {
          await ctx.app.module.auth.createUser({ email: "root@test.com", password: PASSWORD, role: "admin" });
        },
      },
    });
    root = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(() => close(server));

  it("naming a tenant is 400 and stores nothing; without one the key is made (5.5)", async () => {
    const before = await keyRows(server);
    const res = await ask(server, "POST", "/api/system/keys", { name: "x", kind: "secret", tenant: 1 }, root, "key");
    expect(res.status, res.text).toBe(400);
    expect(Object.keys(res.body.error.fields)).toEqual(["tenant"]);
    expect(await keyRows(server)).toEqual(before);
    const plain = await ask(server, "POST", "/api/system/keys", { name: "x", kind: "secret" }, root, "key");
    expect([plain.status, plain.body.data?.tenant], plain.text).toEqual([201, null]);
  });
});

it("no answer of this file holds a full key but the create or rotate that issued it, and none a key's hash (5.2)", () => {
  expect(answers.length).toBeGreaterThan(50);
  expect(answers.filter((a) => a.key !== undefined).length).toBeGreaterThan(3);
  for (const { what, text, key: shown } of answers) {
    for (const k of issued) if (k !== shown) expect(text, `${what} holds the key ${k.slice(0, 12)}…`).not.toContain(k);
    for (const h of hashes) expect(text, `${what} holds a key's hash`).not.toContain(h);
    expect(text, what).not.toMatch(/"hash"/);
  }
});
