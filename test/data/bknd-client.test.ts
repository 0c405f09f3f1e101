/**
 * §2, §3: bknd's own client (`new Api({ host })` from `bknd/client`) works against Citadel unchanged.
 *
 * Each test replays the requests that bknd@0.20.0's client sent to a Citadel server (method, path, query
 * string, body, headers), recorded with a logging `fetcher` passed to `new Api({ host, fetcher })`, and checks
 * what the client reads from the answer. bknd is not a dependency of this repository.
 *
 * What the 0.20.0 client does (dist/ui/client/index.js):
 * - every request sends `Accept: application/json`; once `api.auth.login/register` saw `body.token`, every
 *   request also sends `Authorization: Bearer <token>`, and `api.getUser()` is the token's payload minus
 *   `iat`, `iss`, `exp`. Given a `cookie` header instead (`new Api({ headers })` or `{ request }`), it reads
 *   the `auth` cookie and forwards the headers as they are.
 * - `FetchPromise` parses the body only when Content-Type starts with `application/json`; `res.data` is
 *   `body.data` when the body has a `data` key and the body itself otherwise; `res.ok`/`res.status` come from
 *   the response.
 * - query strings (`encodeSearch`): arrays become repeated keys (`select=id&select=title`), objects JSON, and
 *   nothing is URI-encoded (fetch escapes only `"`, space, `<`, `>`), so an `&` inside a JSON value splits it.
 *   `readMany` posts the query to `.../query` instead when the URL would exceed 1000 characters.
 * - POST and PATCH bodies are JSON; a DELETE body is not serialised, so `deleteMany` sends "[object Object]".
 */
import { boolean, type CitadelConfig, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryParams } from "../../src/http/query-string.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";

const E = "/api/data/entity";
const ADMIN = { email: "admin@example.com", password: "admin-password-1" };
const WRITER = { email: "writer@example.com", password: "writer-password-1" };

/** The SPEC §1 blog, with the roles the client was exercised under. */
const schema = em(
  {
    posts: entity("posts", { title: text().required(), content: text(), published: boolean().default(false) }),
    comments: entity("comments", { body: text().required(), approved: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users),
    relation(comments, "post").manyToOne(posts),
  ],
);

const config: CitadelConfig = {
  data: schema.toJSON(),
  auth: {
    enabled: true,
    guard: { enabled: true },
    allow_register: true,
    default_role_register: "user",
    roles: {
      anonymous: {
        is_default: true,
        implicit_allow: false,
        permissions: [
          {
            permission: "data.entity.read",
            effect: "allow",
            policies: [
              { condition: { entity: "posts" }, effect: "filter", filter: { published: true } },
              { condition: { entity: "comments" }, effect: "filter", filter: { approved: true } },
            ],
          },
        ],
      },
      user: {
        implicit_allow: false,
        permissions: [
          "data.entity.read",
          "data.entity.create",
          {
            permission: "data.entity.update",
            effect: "allow",
            policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { author_id: "@user.id" } }],
          },
          {
            permission: "data.entity.delete",
            effect: "allow",
            policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { author_id: "@user.id" } }],
          },
        ],
      },
      admin: { implicit_allow: true },
    },
  },
};

/** What `api.getUser()` returns: the token's payload without iat, iss and exp. */
function clientUser(token: string): Record<string, unknown> {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"));
  for (const k of ["iat", "iss", "exp"]) delete payload[k];
  return payload;
}

/** `res.data` as the client computes it; undefined unless the answer is JSON (the client would not parse it). */
// biome-ignore lint/suspicious/noExplicitAny: the client hands back arbitrary JSON
function clientData(res: TestResponse): any {
  expect(res.headers.get("content-type") ?? "", res.text).toMatch(/^application\/json/);
  return res.body && typeof res.body === "object" && "data" in res.body ? res.body.data : res.body;
}

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
const idsOf = (rows: any[]) => rows.map((r) => r.id);

describe("bknd@0.20.0 client against Citadel (§2, §3)", () => {
  let server: TestServer;
  let writer: { id: number; token: string };
  let posts: { hello: number; draft: number; second: number; qa: number };
  let comments: { shown: number; hidden: number };

  /** A request with the headers the client sends: Accept always, Bearer once it holds a token. */
  const send = (
    method: string,
    path: string,
    opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ) =>
    server.request(method, path, opts.body, {
      accept: "application/json",
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...opts.headers,
    });

  beforeAll(async () => {
    server = await startServer(config, {
      options: {
        seed: async ({ app }) => {
          const admin = await app.module.auth.createUser({ ...ADMIN, role: "admin" });
          const [hello, , second] = (await app.module.data.create("posts", [
            { title: "Hello World", content: "a & b", published: true, author_id: admin.id },
            { title: "Draft", published: false, author_id: admin.id },
            { title: "Second", published: true },
            { title: "Q&A", content: "x&limit=5", published: true },
          ])) as { id: number }[];
          await app.module.data.create("comments", [
            { body: "first", approved: true, post_id: hello!.id },
            { body: "hidden", approved: false, post_id: hello!.id },
            { body: "third", approved: true, post_id: second!.id },
          ]);
        },
      },
    });
    const ids = (rows: Record<string, unknown>[]) => rows.map((r) => r.id as number);
    const [hello, draft, second, qa] = ids(await server.app.module.data.list("posts"));
    posts = { hello: hello!, draft: draft!, second: second!, qa: qa! };
    const [shown, hidden] = ids(await server.app.module.data.list("comments"));
    comments = { shown: shown!, hidden: hidden! };
    const reg = await send("POST", "/api/auth/password/register", { body: WRITER });
    expect(reg.status, reg.text).toBe(201);
    writer = { id: reg.body.user.id, token: reg.body.token };
  });
  afterAll(async () => {
    await server?.close();
  });

  it("api.data.readMany() sends no query and reads { data, meta } (§2, §2.1)", async () => {
    const res = await send("GET", `${E}/posts`);
    expect(res.status, res.text).toBe(200);
    expect(idsOf(clientData(res))).toEqual([posts.hello, posts.second, posts.qa]);
    expect(res.body.meta).toMatchObject({ items: 3, count: 3, total: 3, offset: 0 });
  });

  it("api.data.readMany with where/select/sort/limit/offset as bknd encodes them (§2, §2.2)", async () => {
    // api.data.readMany("posts", { where: { title: { $like: "*World*" } }, select: ["id", "title"], sort: "-id", limit: 5, offset: 0 })
    const res = await send(
      "GET",
      `${E}/posts?where={%22title%22:{%22$like%22:%22*o*%22}}&select=id&select=title&sort=-id&limit=5&offset=0`,
    );
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)).toEqual([
      { id: posts.second, title: "Second" },
      { id: posts.hello, title: "Hello World" },
    ]);
    expect(res.body.meta).toMatchObject({ items: 2, count: 2, total: 3, limit: 5, offset: 0 });
  });

  it("api.data.readMany with sort as { by, dir } sends it as JSON (§2.2)", async () => {
    // api.data.readMany("posts", { sort: { by: "title", dir: "desc" } })
    const res = await send("GET", `${E}/posts?sort={%22by%22:%22title%22,%22dir%22:%22desc%22}`);
    expect(res.status, res.text).toBe(200);
    expect(idsOf(clientData(res))).toEqual([posts.second, posts.qa, posts.hello]);
  });

  it("api.data.readMany with `with` as repeated keys, a JSON array or a JSON object (§2, §4.5)", async () => {
    // with: ["comments", "author"], select: ["id"]
    const repeated = await send("GET", `${E}/posts?with=comments&with=author&select=id`);
    expect(repeated.status, repeated.text).toBe(200);
    const hello = clientData(repeated).find((p: { id: number }) => p.id === posts.hello);
    expect(idsOf(hello.comments)).toEqual([comments.shown]); // the unapproved comment stays hidden
    expect(hello.author).toBeUndefined(); // users are not readable anonymously: the relation is omitted
    // with: '["comments"]' and with: { comments: { limit: 1, sort: "-id" } }
    const array = await send("GET", `${E}/posts?with=[%22comments%22]`);
    expect(array.status, array.text).toBe(200);
    const object = await send("GET", `${E}/posts?with={%22comments%22:{%22limit%22:1,%22sort%22:%22-id%22}}`);
    expect(object.status, object.text).toBe(200);
    for (const res of [array, object]) {
      const row = clientData(res).find((p: { id: number }) => p.id === posts.hello);
      expect(idsOf(row.comments)).toEqual([comments.shown]);
    }
  });

  it("api.data.readMany with an & inside a where value, which bknd leaves unencoded (§2)", async () => {
    // api.data.readMany("posts", { where: { content: "a & b" } })
    const amp = await send("GET", `${E}/posts?where={%22content%22:%22a%20&%20b%22}`);
    expect(amp.status, amp.text).toBe(200);
    expect(idsOf(clientData(amp))).toEqual([posts.hello]);
    // a value that looks like another parameter does not become one: { where: { content: "x&limit=5" }, limit: 1 }
    const lookalike = await send("GET", `${E}/posts?where={%22content%22:%22x&limit=5%22}&limit=1`);
    expect(lookalike.status, lookalike.text).toBe(200);
    expect(idsOf(clientData(lookalike))).toEqual([posts.qa]);
    expect(lookalike.body.meta).toMatchObject({ limit: 1, count: 1 });
    // and the same for count through the GET alias
    const count = await send("GET", `${E}/posts/count?where={%22title%22:%22Q&A%22}`);
    expect(count.body, count.text).toEqual({ data: { count: 1 } });
  });

  it("api.data.readMany longer than 1000 characters posts the query to .../query (§2)", async () => {
    // api.data.readMany("posts", { where: { title: { $in: [...120 titles] } } })
    const titles = Array.from({ length: 120 }, (_, i) => `title-${i}`).concat("Second");
    const res = await send("POST", `${E}/posts/query`, { body: { where: { title: { $in: titles } } } });
    expect(res.status, res.text).toBe(200);
    expect(idsOf(clientData(res))).toEqual([posts.second]);
    expect(res.body.meta).toMatchObject({ items: 1, count: 1 });
  });

  it("api.data.readOneBy reads a one-row list and refines data to data[0] (§2)", async () => {
    // api.data.readOneBy("posts", { where: { title: "Second" } })
    const res = await send("GET", `${E}/posts?where={%22title%22:%22Second%22}&limit=1&offset=0`);
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)[0]).toMatchObject({ id: posts.second, title: "Second" });
  });

  it("api.data.readOne reads { data } with select and with; an unreadable row is 404 (§2, §4.5)", async () => {
    const res = await send("GET", `${E}/posts/${posts.hello}`);
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)).toMatchObject({ id: posts.hello, title: "Hello World", published: true });
    // api.data.readOne("posts", id, { select: ["id", "title"], with: ["comments"] })
    const narrow = await send("GET", `${E}/posts/${posts.hello}?select=id&select=title&with=comments`);
    expect(narrow.status, narrow.text).toBe(200);
    expect(clientData(narrow)).toEqual({ id: posts.hello, title: "Hello World", comments: expect.any(Array) });
    // api.data.readOne("posts", id, { with: { comments: { where: { body: "first" } } } })
    const filtered = await send(
      "GET",
      `${E}/posts/${posts.hello}?with={%22comments%22:{%22where%22:{%22body%22:%22first%22}}}`,
    );
    expect(idsOf(clientData(filtered).comments)).toEqual([comments.shown]);
    const hidden = await send("GET", `${E}/posts/${posts.draft}`);
    expect(hidden.status).toBe(404);
    expect(clientData(hidden)).toEqual({ error: { code: "not_found", message: expect.any(String) } });
  });

  it("api.data.readManyByReference lists related rows under their own read permission (§2, §4.5)", async () => {
    const all = await send("GET", `${E}/posts/${posts.hello}/comments`);
    expect(all.status, all.text).toBe(200);
    expect(idsOf(clientData(all))).toEqual([comments.shown]);
    expect(all.body.meta).toMatchObject({ items: 1, count: 1, total: 1 });
    // api.data.readManyByReference("posts", id, "comments", { limit: 1, sort: "-id" }) and with where/select
    const paged = await send("GET", `${E}/posts/${posts.hello}/comments?limit=1&sort=-id`, { token: writer.token });
    expect(idsOf(clientData(paged))).toEqual([comments.hidden]);
    const selected = await send(
      "GET",
      `${E}/posts/${posts.hello}/comments?where={%22body%22:%22first%22}&select=id&select=body`,
    );
    expect(clientData(selected)).toEqual([{ id: comments.shown, body: "first" }]);
  });

  it("api.data.createOne posts JSON and reads 201 { data } (§2)", async () => {
    const res = await send("POST", `${E}/posts`, {
      body: { title: "Mine", author_id: writer.id },
      token: writer.token,
    });
    expect(res.status, res.text).toBe(201);
    expect(clientData(res)).toMatchObject({ id: expect.any(Number), title: "Mine", author_id: writer.id });
    const anonymous = await send("POST", `${E}/posts`, { body: { title: "nope" } });
    expect(anonymous.status).toBe(403);
    expect(anonymous.body.error.code).toBe("forbidden");
  });

  it("api.data.createMany posts an array and reads 201 { data: [...] } (§2)", async () => {
    const res = await send("POST", `${E}/posts`, {
      body: [
        { title: "Mine 2", author_id: writer.id },
        { title: "Mine 3", author_id: writer.id },
      ],
      token: writer.token,
    });
    expect(res.status, res.text).toBe(201);
    expect(clientData(res).map((p: { title: string }) => p.title)).toEqual(["Mine 2", "Mine 3"]);
  });

  it("api.data.updateOne patches one row and reads { data }; another author's row is 403 (§2, §4.5)", async () => {
    const [mine] = await server.app.module.data.list("posts", { title: "Mine" });
    const res = await send("PATCH", `${E}/posts/${mine!.id}`, { body: { title: "Mine renamed" }, token: writer.token });
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)).toMatchObject({ id: mine!.id, title: "Mine renamed" });
    const other = await send("PATCH", `${E}/posts/${posts.hello}`, { body: { title: "hijack" }, token: writer.token });
    expect(other.status).toBe(403);
  });

  it("api.data.updateMany patches { update, where } and reads { data: [...] } (§2)", async () => {
    // api.data.updateMany("posts", { title: { $like: "Mine *" } }, { published: true })
    const res = await send("PATCH", `${E}/posts`, {
      body: { update: { published: true }, where: { title: { $like: "Mine *" } } },
      token: writer.token,
    });
    expect(res.status, res.text).toBe(200);
    expect(clientData(res).map((p: { title: string; published: boolean }) => [p.title, p.published])).toEqual([
      ["Mine renamed", true],
      ["Mine 2", true],
      ["Mine 3", true],
    ]);
  });

  it("api.data.deleteOne deletes one row and reads the deleted row as { data } (§2)", async () => {
    const [mine] = await server.app.module.data.list("posts", { title: "Mine renamed" });
    const res = await send("DELETE", `${E}/posts/${mine!.id}`, { token: writer.token });
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)).toMatchObject({ id: mine!.id, title: "Mine renamed" });
    expect((await send("GET", `${E}/posts/${mine!.id}`, { token: writer.token })).status).toBe(404);
  });

  it('api.data.deleteMany sends "[object Object]": 400 naming the workaround, nothing deleted (§2, §2.3)', async () => {
    // api.data.deleteMany("posts", { title: "Mine 2" }): bknd passes the object to `new Request` unserialised
    const before = (await server.app.module.data.list("posts")).length;
    const res = await send("DELETE", `${E}/posts`, {
      body: "[object Object]",
      token: writer.token,
      headers: { "content-type": "text/plain;charset=UTF-8" },
    });
    expect(res.status, res.text).toBe(400);
    expect(clientData(res).error).toMatchObject({ code: "bad_request", path: "where" });
    expect(res.body.error.message).toContain("JSON.stringify(where)");
    expect((await server.app.module.data.list("posts")).length).toBe(before);
    // the workaround: api.data.delete(["entity", "posts"], JSON.stringify(where)) sends the JSON as text/plain
    const workaround = await send("DELETE", `${E}/posts`, {
      body: JSON.stringify({ title: "Mine 2" }),
      token: writer.token,
      headers: { "content-type": "text/plain;charset=UTF-8" },
    });
    expect(workaround.status, workaround.text).toBe(200);
    expect(clientData(workaround).map((p: { title: string }) => p.title)).toEqual(["Mine 2"]);
  });

  it("api.data.count posts the where to fn/count and reads { entity, count } (§2, §4.5)", async () => {
    const all = await send("POST", `${E}/posts/fn/count`, { body: {} });
    expect(all.status, all.text).toBe(200);
    const published = (await server.app.module.data.list("posts", { published: true })).length;
    expect(clientData(all)).toEqual({ entity: "posts", count: published }); // anonymous: drafts are not counted
    expect(published).toBeLessThan((await server.app.module.data.list("posts")).length);
    const some = await send("POST", `${E}/posts/fn/count`, { body: { title: { $in: ["Draft", "Second"] } } });
    expect(clientData(some)).toEqual({ entity: "posts", count: 1 });
  });

  it("api.data.exists posts the where to fn/exists and reads { entity, exists } (§2, §4.5)", async () => {
    const hidden = await send("POST", `${E}/posts/fn/exists`, { body: { title: "Draft" } });
    expect(hidden.status, hidden.text).toBe(200);
    expect(clientData(hidden)).toEqual({ entity: "posts", exists: false });
    const admin = await send("POST", "/api/auth/password/login", { body: ADMIN });
    const seen = await send("POST", `${E}/posts/fn/exists`, { body: { title: "Draft" }, token: admin.body.token });
    expect(clientData(seen)).toEqual({ entity: "posts", exists: true });
  });

  it("api.auth.register (registerWithPassword) reads body.token; its payload is the client's user (§3)", async () => {
    const res = await send("POST", "/api/auth/password/register", {
      body: { email: "new@example.com", password: "password-123" },
    });
    expect(res.status, res.text).toBe(201);
    expect(typeof res.body.token).toBe("string");
    expect(clientData(res).user).toMatchObject({ email: "new@example.com", role: "user" });
    expect(clientUser(res.body.token)).toMatchObject({ id: res.body.user.id, email: "new@example.com", role: "user" });
  });

  it("api.auth.login (loginWithPassword) reads body.token, also while it still sends its old Bearer (§3)", async () => {
    const res = await send("POST", "/api/auth/password/login", { body: WRITER, token: writer.token });
    expect(res.status, res.text).toBe(200);
    expect(clientUser(res.body.token)).toMatchObject({ id: writer.id, email: WRITER.email, role: "user" });
    const wrong = await send("POST", "/api/auth/password/login", { body: { ...WRITER, password: "wrong-password" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.token).toBeUndefined();
  });

  it("api.auth.me and api.verifyAuth() read data.user with the Bearer token; anonymous is not ok (§3)", async () => {
    const res = await send("GET", "/api/auth/me", { token: writer.token });
    expect(res.status, res.text).toBe(200);
    expect(clientData(res).user).toMatchObject({ id: writer.id, email: WRITER.email, role: "user" });
    expect(res.text).not.toMatch(/password|strategy_value/);
    const anonymous = await send("GET", "/api/auth/me");
    expect(anonymous.status).toBe(401); // the client treats any non-ok answer as "logged out"
  });

  it("api.auth.strategies reads the password strategy (§3)", async () => {
    const res = await send("GET", "/api/auth/strategies");
    expect(res.status, res.text).toBe(200);
    expect(clientData(res)).toMatchObject({ strategies: { password: expect.any(Object) }, allow_register: true });
  });

  it("api.auth.logout is a GET that clears the cookie and revokes the token (§3, §4.11)", async () => {
    const reg = await send("POST", "/api/auth/password/register", {
      body: { email: "leaving@example.com", password: "password-123" },
    });
    const res = await send("GET", "/api/auth/logout", { token: reg.body.token });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("set-cookie") ?? "").toMatch(/^auth=;/);
    expect((await send("GET", "/api/auth/me", { token: reg.body.token })).status).toBe(401);
  });

  it("new Api({ headers }) with bknd's auth cookie reads as the user; a write needs an Origin (§3.2, §3.7)", async () => {
    const cookie = { cookie: `auth=${writer.token}` };
    const me = await send("GET", "/api/auth/me", { headers: cookie });
    expect(me.status, me.text).toBe(200);
    expect(clientData(me).user).toMatchObject({ id: writer.id });
    const list = await send("GET", `${E}/posts?limit=1`, { headers: cookie });
    const all = (await server.app.module.data.list("posts")).length;
    expect(list.body.meta).toMatchObject({ limit: 1, total: all }); // the writer's role sees drafts too
    const write = await send("POST", `${E}/posts`, { body: { title: "c", author_id: writer.id }, headers: cookie });
    expect(write.status).toBe(403);
    const sameOrigin = await send("POST", `${E}/posts`, {
      body: { title: "c", author_id: writer.id },
      headers: { ...cookie, origin: server.url },
    });
    expect(sameOrigin.status, sameOrigin.text).toBe(201);
  });
});

describe("queryParams: bknd's unencoded query strings (§2)", () => {
  const get = (search: string) => Object.fromEntries(queryParams(`http://h/p?${search}`));

  it("decodes like Hono: repeated keys in order, + as a space, bad escapes kept (§2)", () => {
    expect(get("select=id&select=title&a+b=%7Bx%7D&bad=%zz&flag&=skipped")).toEqual({
      select: ["id", "title"],
      "a b": ["{x}"],
      bad: ["%zz"],
      flag: [""],
    });
    expect(queryParams("http://h/p")).toEqual(new Map());
  });

  it("rejoins a JSON value that an & split, and only a JSON value (§2)", () => {
    expect(get('where={"a":"x&limit=5"}&limit=1')).toEqual({ where: ['{"a":"x&limit=5"}'], limit: ["1"] });
    expect(get('with={"c":{"where":{"b":"1&2"}}}&sort=-id')).toEqual({
      with: ['{"c":{"where":{"b":"1&2"}}}'],
      sort: ["-id"],
    });
    expect(get("select=a&b")).toEqual({ select: ["a"], b: [""] });
  });

  it("leaves malformed JSON as sent, so it is still a 400 (§2.3)", () => {
    expect(get("where={bad&limit=1")).toEqual({ where: ["{bad"], limit: ["1"] });
    expect(get('where={"a":1}}&x=1')).toEqual({ where: ['{"a":1}}'], x: ["1"] });
    expect(get('where={"a":"&b"')).toEqual({ where: ['{"a":"'], 'b"': [""] });
  });

  // No clock: rescanning the rest for each piece would be 200,000² steps, far past the test's timeout on any
  // machine, where one scan is a few milliseconds.
  it("scans a value that never closes once, however many pieces follow (§2.3)", () => {
    const pieces = Array.from({ length: 200_000 }, (_, i) => `k${i}=${"x".repeat(20)}`).join("&");
    const params = get(`where={"a":"&${pieces}`);
    expect(params.where).toEqual(['{"a":"']);
    expect(params.k199999).toEqual(["x".repeat(20)]);
  });
});
