/**
 * Cross-tenant attempts (§6.5) as `citadel_cross_tenant_attempts_total` counts them (§7.5), against what a caller
 * can do to hide one: naming another account's row by id in the path (a 404 like a missing row, counted without
 * changing that answer), padding or deeply nesting a body around its where, and a query string the app refuses.
 * None of these is the server's failure: the log holds no "unexpected error".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { parsePrometheus } from "../metrics/prometheus-text.js";
import { PASSWORD, seedTenants, tenancyConfig } from "./fixture.js";

type Headers = Record<string, string>;
const CROSS = "citadel_cross_tenant_attempts_total";
const q = (where: unknown) => encodeURIComponent(JSON.stringify(where));

describe("cross-tenant attempts by path, padding, nesting and refused query strings (6.5, 7.5)", () => {
  let server: TestServer;
  /** every message the app logged, with the error it logged, as text */
  const logged: string[] = [];
  let as: Record<"alice" | "adam" | "root" | "anonymous" | "pkA", Headers>;
  let secret: Headers;
  let ids: { A: number; B: number; carol: number; aliceNote: number; bobNote: number; carolNote: number };

  const count = async (): Promise<number> => {
    const res = await server.request("GET", "/api/system/metrics", undefined, secret);
    expect(res.status, res.text).toBe(200);
    return parsePrometheus(res.text).value(CROSS);
  };
  const send = async (method: string, path: string, body: unknown, headers: Headers, status: number) => {
    const res = await server.request(method, path, body, headers);
    expect(res.status, `${method} ${path}: ${res.text.slice(0, 300)}`).toBe(status);
    return res;
  };
  /** How much the counter moved over one request answered `status`, and that nothing was logged as unexpected. */
  const moved = async (method: string, path: string, body: unknown, headers: Headers, status: number) => {
    const before = await count();
    const from = logged.length;
    const res = await send(method, path, body, headers, status);
    const after = await count();
    expect(logged.slice(from).filter((m) => m.includes("unexpected error"))).toEqual([]);
    return { by: after - before, res };
  };

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), {
      options: {
        seed: seedTenants,
        log: (message, error) => {
          logged.push(`${message} ${error instanceof Error ? `${error.name}: ${error.message}` : String(error ?? "")}`);
        },
      },
    });
    const token = async (email: string) => bearer(await login(server, email, PASSWORD));
    const [alice, adam, root] = await Promise.all(["alice@a.test", "adam@a.test", "root@test.com"].map(token));
    const accounts = await server.rows(`SELECT "id", "slug" FROM accounts ORDER BY "id"`);
    const A = accounts.find((a) => a.slug === "a")!.id as number;
    const B = accounts.find((a) => a.slug === "b")!.id as number;
    const issue = async (body: Record<string, unknown>) => {
      const res = await server.request("POST", "/api/system/keys", body, root!);
      expect(res.status, res.text).toBe(201);
      return { apikey: res.body.data.key as string };
    };
    secret = await issue({ name: "scraper", kind: "secret" });
    as = {
      alice: alice!,
      adam: adam!,
      root: root!,
      anonymous: {},
      pkA: await issue({ name: "web A", kind: "publishable", tenant: A }),
    };
    const users = await server.rows(`SELECT "id", "email" FROM users`);
    const notes = await server.rows(`SELECT "id", "slug", "account_id" FROM notes`);
    const note = (slug: string, account: number) =>
      notes.find((n) => n.slug === slug && n.account_id === account)!.id as number;
    ids = {
      A,
      B,
      carol: users.find((u) => u.email === "carol@b.test")!.id as number,
      aliceNote: note("hello", A),
      bobNote: note("bob", A),
      carolNote: note("hello", B),
    };
  });
  afterAll(() => server?.close());

  it("counts a path naming another account's row (404 as for a missing row), once per request", async () => {
    const { carolNote, carol, B } = ids;
    const cases: [string, string, unknown, keyof typeof as][] = [
      ["GET", `/api/data/notes/${carolNote}`, undefined, "adam"],
      ["GET", `/api/data/entity/notes/${carolNote}`, undefined, "adam"],
      ["PATCH", `/api/data/notes/${carolNote}`, { title: "mine now" }, "adam"],
      ["DELETE", `/api/data/notes/${carolNote}`, undefined, "adam"],
      ["GET", `/api/data/notes/${carolNote}/comments`, undefined, "adam"],
      ["GET", `/api/data/users/${carol}`, undefined, "adam"],
      ["GET", `/api/data/notes/${carolNote}`, undefined, "alice"],
      ["PATCH", `/api/data/notes/${carolNote}`, { title: "mine now" }, "alice"],
      // a caller bound to no account names another's row with any id of a scoped entity
      ["GET", `/api/data/notes/${carolNote}`, undefined, "anonymous"],
      // named twice (path and where): one attempt
      ["GET", `/api/data/notes/${carolNote}/comments?where=${q({ account_id: B })}`, undefined, "adam"],
    ];
    for (const [method, path, body, who] of cases) {
      const { by } = await moved(method, path, body, as[who], 404);
      expect(by, `${who}: ${method} ${path}`).toBe(1);
    }
    // carol's note is untouched
    const [row] = await server.rows(`SELECT "title" FROM notes WHERE "id" = ?`, carolNote);
    expect(row?.title).toBe("carol's note");
  });

  it("answers the probe exactly as a missing row: same status and body", async () => {
    const missing = 987_654;
    for (const [method, body] of [
      ["GET", undefined],
      ["PATCH", { title: "x" }],
      ["DELETE", undefined],
    ] as const) {
      const theirs = await send(method, `/api/data/notes/${ids.carolNote}`, body, as.adam, 404);
      const none = await send(method, `/api/data/notes/${missing}`, body, as.adam, 404);
      expect(theirs.text, method).toBe(none.text);
      for (const header of ["content-type", "content-length", "cache-control"])
        expect(theirs.headers.get(header), `${method} ${header}`).toBe(none.headers.get(header));
    }
  });

  it("does not count a 404 on a row that does not exist, or that the caller's own account hides", async () => {
    const cases: [string, string, unknown, keyof typeof as, number][] = [
      ["GET", "/api/data/notes/987654", undefined, "adam", 404],
      ["PATCH", "/api/data/notes/987654", { title: "x" }, "alice", 404],
      ["GET", "/api/data/notes/987654/comments", undefined, "adam", 404],
      ["GET", "/api/data/notes/0", undefined, "adam", 404],
      ["GET", "/api/data/notes/abc", undefined, "adam", 404],
      // bob's note is account A's but not public: hidden from A's publishable key by its policy, not its tenant
      ["GET", `/api/data/notes/${ids.bobNote}`, undefined, "pkA", 404],
      // its own rows, and a caller of every account
      ["GET", `/api/data/notes/${ids.aliceNote}`, undefined, "pkA", 200],
      ["GET", `/api/data/notes/${ids.aliceNote}`, undefined, "adam", 200],
      ["GET", `/api/data/notes/${ids.carolNote}`, undefined, "root", 200],
      ["GET", "/api/data/notes/987654", undefined, "root", 404],
      // an unknown entity is not a row of anyone's
      ["GET", `/api/data/nowhere/${ids.carolNote}`, undefined, "adam", 404],
    ];
    for (const [method, path, body, who, status] of cases) {
      const { by } = await moved(method, path, body, as[who], status);
      expect(by, `${who}: ${method} ${path}`).toBe(0);
    }
  });

  it("the tenant entity's own id in the path stays one attempt", async () => {
    expect((await moved("GET", `/api/data/accounts/${ids.B}`, undefined, as.adam, 404)).by).toBe(1);
  });

  it("counts a write whose reference names another account's row (409 as for a missing row, 4.17)", async () => {
    const { carolNote, aliceNote } = ids;
    const refused: [string, string, unknown][] = [
      ["POST", "/api/data/comments", { body: "hi", note_id: carolNote }],
      [
        "POST",
        "/api/data/comments",
        [
          { body: "mine", note_id: aliceNote },
          { body: "theirs", note_id: carolNote },
        ],
      ],
    ];
    const before = await server.rows(`SELECT count(*) AS n FROM comments`);
    for (const [method, path, body] of refused) {
      const { by, res } = await moved(method, path, body, as.adam, 409);
      expect(by, `${method} ${path} ${JSON.stringify(body)}`).toBe(1);
      const missing = await send(method, path, { body: "hi", note_id: 987_654 }, as.adam, 409);
      expect(res.text).toBe(missing.text);
    }
    const { res: own } = await moved("POST", "/api/data/comments", { body: "ok", note_id: aliceNote }, as.adam, 201);
    const created = own.body.data.id as number;
    const repoint = (note: number) => moved("PATCH", `/api/data/comments/${created}`, { note_id: note }, as.adam, 409);
    expect((await repoint(carolNote)).by).toBe(1);
    expect((await repoint(987_654)).by).toBe(0);
    // nothing of the refused writes was stored
    const after = await server.rows(`SELECT count(*) AS n FROM comments`);
    expect(Number(after[0]!.n)).toBe(Number(before[0]!.n) + 1);
  });

  it("counts a 409 on an email taken in another account, the one cross-tenant signal allowed (6.3)", async () => {
    const users = async () => Number((await server.rows(`SELECT count(*) AS n FROM users`))[0]!.n);
    const before = await users();
    const alice = (await server.rows(`SELECT "id" FROM users WHERE "email" = 'alice@a.test'`))[0]!.id as number;
    const cases: [string, string, unknown, keyof typeof as, number][] = [
      // a tenant admin adding a user whose email account B holds, in any case
      ["POST", "/api/data/users", { email: "carol@b.test" }, "adam", 1],
      ["POST", "/api/data/users", [{ email: "new@a.test" }, { email: "Carol@B.test" }], "adam", 1],
      ["PATCH", `/api/data/users/${alice}`, { email: "carol@b.test" }, "adam", 1],
      // registering, bound to no account yet
      [
        "POST",
        "/api/auth/password/register",
        { email: "carol@b.test", password: "another-tenant-pw", account: { name: "x" } },
        "anonymous",
        1,
      ],
      // taken in its own account, or asked by a caller of every account: no attempt
      ["POST", "/api/data/users", { email: "bob@a.test" }, "adam", 0],
      ["POST", "/api/data/users", { email: "carol@b.test" }, "root", 0],
    ];
    for (const [method, path, body, who, count] of cases) {
      const { by } = await moved(method, path, body, as[who], 409);
      expect(by, `${who}: ${method} ${path} ${JSON.stringify(body)}`).toBe(count);
    }
    expect(await users()).toBe(before);
  });

  it("counts a where that padding precedes in the body (b)", async () => {
    const pad = Array.from({ length: 10_001 }, () => 0);
    const where = { account_id: ids.B };
    // `pad` is no key of the route's: 400 (2.3), and the where beside it is counted all the same
    const cases: [string, string, unknown, number][] = [
      ["POST", "/api/data/notes/query", { pad, where }, 400],
      ["POST", "/api/data/notes/query", { pad: Object.fromEntries(pad.map((_, i) => [`k${i}`, i])), where }, 400],
      ["POST", "/api/data/notes/query", { pad, where: { $and: [{ $and: [{ $or: [where, { title: "x" }] }] }] } }, 400],
      ["POST", "/api/data/notes/query", { pad, with: { comments: { where } } }, 400],
      ["PATCH", "/api/data/notes", { pad, update: { title: "x" }, where }, 400],
      ["PATCH", "/api/data/notes", { update: { title: "x" }, where: { $and: [{ id: { $in: pad } }], ...where } }, 400],
      ["POST", "/api/data/notes", { pad, title: "t", account_id: ids.B }, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const { by } = await moved(method, path, body, as.adam, status);
      expect(by, `${method} ${path} ${JSON.stringify(body).slice(0, 40)}`).toBe(1);
    }
    // padding alone, or a key the route does not read, names nobody
    const unread = { pad: [{ account_id: ids.B }], sort: "id", nothing: { where } };
    expect((await moved("POST", "/api/data/notes/query", unread, as.adam, 400)).by).toBe(0);
  });

  it("counts a where beside nesting deeper than any walk, and never fails on it (c)", async () => {
    const deep = `${"[".repeat(12_000)}0${"]".repeat(12_000)}`;
    const deepObject = `${'{"a":'.repeat(12_000)}0${"}".repeat(12_000)}`;
    const where = JSON.stringify({ account_id: ids.B });
    const cases: [string, string, string, number][] = [
      ["POST", "/api/data/notes/query", `{"where":${where},"pad":${deep}}`, 400],
      ["POST", "/api/data/notes/query", `{"pad":${deepObject},"where":${where}}`, 400],
      // nested inside the where itself: refused by its parser, still named another account
      ["POST", "/api/data/notes/query", `{"where":{"title":${deep},"account_id":${ids.B}}}`, 400],
      ["POST", "/api/data/notes/fn/count", `{"account_id":${ids.B},"$or":${deep}}`, 400],
      ["POST", "/api/data/notes", `{"title":"t","account_id":${ids.B},"pad":${deepObject}}`, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const { by } = await moved(method, path, body, as.adam, status);
      expect(by, `${method} ${path} ${body.slice(0, 40)}`).toBe(1);
    }
    // nesting alone is no attempt, and no failure either
    expect(
      (await moved("POST", "/api/data/notes/query", `{"where":{"title":"x"},"pad":${deep}}`, as.adam, 400)).by,
    ).toBe(0);
  });

  it("a query string refused for its text is counted by its where, and never logged as the server's failure (d)", async () => {
    const where = `where=${q({ account_id: ids.B })}`;
    for (const junk of ["junk=%00", `junk=${encodeURIComponent('"\\ud800"')}`, "sort=a%00"]) {
      for (const path of [`/api/data/notes?${where}&${junk}`, `/api/data/notes?${junk}&${where}`]) {
        const { by } = await moved("GET", path, undefined, as.adam, 400);
        expect(by, path).toBe(1);
      }
      const { by } = await moved("GET", `/api/data/notes?${junk}`, undefined, as.adam, 400);
      expect(by, junk).toBe(0);
    }
    // the where itself refused for its text
    const refused = `/api/data/notes?where=${q({ account_id: ids.B, title: "\ud800" })}`;
    expect((await moved("GET", refused, undefined, as.adam, 400)).by).toBe(1);
  });

  it("logged nothing as unexpected over the whole run", () => {
    expect(logged.filter((m) => m.includes("unexpected error"))).toEqual([]);
  });
});
