/** §2 / §2.1 / §2.2: list, where operators, sort, select, limit/offset, meta, count, exists, POST query. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, expectError, expectNoLeak, ids, q, type Seeded, seedBlog, sorted } from "./fixtures.js";

describe.each(ENGINE_DRIVERS)("data API queries (%s)", (driver) => {
  let server: TestServer;
  let s: Seeded;
  let P: Seeded["posts"];

  beforeAll(async () => {
    server = await startServer(config, { driver });
    s = await seedBlog(server);
    P = s.posts;
  });
  afterAll(async () => {
    await server?.close();
  });

  const where = async (w: unknown) => {
    const res = await server.request("GET", `/api/data/posts?where=${q(w)}&limit=1000`);
    expect(res.status, res.text).toBe(200);
    return sorted(ids(res));
  };

  it("lists answer { data, meta } with items, count, total, limit, offset (2.1)", async () => {
    const res = await server.request("GET", "/api/data/posts");
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(5);
    expect(res.body.meta).toEqual({ items: 5, count: 5, total: 5, limit: 10, offset: 0 });
  });

  it("default order is id ascending (2.2)", async () => {
    const res = await server.request("GET", "/api/data/posts");
    expect(ids(res)).toEqual([P.alpha, P.beta, P.gamma, P.delta, P.epsilon]);
  });

  it("meta.count counts matching rows ignoring limit/offset; meta.total counts all rows (2.1)", async () => {
    const res = await server.request("GET", `/api/data/posts?where=${q({ published: false })}&limit=1&offset=1`);
    expect(res.status).toBe(200);
    expect(ids(res)).toEqual([P.gamma]);
    expect(res.body.meta).toEqual({ items: 1, count: 3, total: 5, limit: 1, offset: 1 });
  });

  it("limit defaults to 10 and offset pages through (2.1)", async () => {
    const first = await server.request("GET", "/api/data/tags");
    expect(first.body.data).toHaveLength(10);
    expect(first.body.meta).toEqual({ items: 10, count: 12, total: 12, limit: 10, offset: 0 });
    const second = await server.request("GET", "/api/data/tags?offset=10");
    expect(ids(second)).toEqual(s.tags.slice(10));
    expect(second.body.meta.items).toBe(2);
    const max = await server.request("GET", "/api/data/tags?limit=1000");
    expect(max.body.data).toHaveLength(12);
  });

  it.each([["limit=1001"], ["limit=-1"], ["limit=1.5"], ["limit=abc"], ["offset=-1"], ["offset=2.5"]])(
    "bad limit/offset %s is 400 (2.3)",
    async (param) => {
      const res = await server.request("GET", `/api/data/posts?${param}`);
      expectError(res, 400, "bad_request");
      expect(res.body.error.message).toContain(param.split("=")[0]);
    },
  );

  it("booleans come back as true/false, json parsed, missing optionals null, defaults applied (2)", async () => {
    const res = await server.request("GET", `/api/data/posts/${P.gamma}`);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      id: P.gamma,
      title: "Gamma 100%",
      views: null,
      status: "draft",
      published: false,
      meta: null,
      author_id: null,
    });
    const alpha = await server.request("GET", `/api/data/posts/${P.alpha}`);
    expect(alpha.body.data.published).toBe(true);
    expect(alpha.body.data.meta).toEqual({ a: 1 });
  });

  it("equality: {field: value}, $eq, booleans (2.2)", async () => {
    expect(await where({ title: "beta" })).toEqual([P.beta]);
    expect(await where({ title: { $eq: "beta" } })).toEqual([P.beta]);
    expect(await where({ published: true })).toEqual([P.alpha, P.delta]);
    expect(await where({ published: false })).toEqual([P.beta, P.gamma, P.epsilon]);
  });

  it("$ne, $gt, $gte, $lt, $lte follow SQL NULL semantics (2.2)", async () => {
    expect(await where({ views: { $ne: 5 } })).toEqual([P.alpha, P.delta, P.epsilon]);
    expect(await where({ views: { $gt: 5 } })).toEqual([P.alpha, P.delta]);
    expect(await where({ views: { $gte: 5 } })).toEqual([P.alpha, P.beta, P.delta]);
    expect(await where({ views: { $lt: 10 } })).toEqual([P.beta, P.epsilon]);
    expect(await where({ views: { $lte: 10 } })).toEqual([P.alpha, P.beta, P.epsilon]);
    expect(await where({ views: { $gt: 0, $lt: 20 } })).toEqual([P.alpha, P.beta]);
  });

  it("$in, array shorthand, $nin and $notin (NULL never matches $nin) (2.2)", async () => {
    expect(await where({ views: { $in: [0, 20] } })).toEqual([P.delta, P.epsilon]);
    expect(await where({ views: [0, 20] })).toEqual([P.delta, P.epsilon]);
    expect(await where({ views: { $nin: [0, 20] } })).toEqual([P.alpha, P.beta]);
    expect(await where({ views: { $notin: [0, 20] } })).toEqual([P.alpha, P.beta]);
    expect(await where({ status: { $in: [] } })).toEqual([]);
    expect(await where({ views: { $nin: [] } })).toEqual([P.alpha, P.beta, P.gamma, P.delta, P.epsilon]);
  });

  it("$between is inclusive; $isnull and {field: null} (2.2)", async () => {
    expect(await where({ views: { $between: [5, 10] } })).toEqual([P.alpha, P.beta]);
    expect(await where({ views: { $isnull: true } })).toEqual([P.gamma]);
    expect(await where({ views: { $isnull: false } })).toEqual([P.alpha, P.beta, P.delta, P.epsilon]);
    expect(await where({ views: null })).toEqual([P.gamma]);
    expect(await where({ content: null })).toEqual([P.beta, P.epsilon]);
  });

  it("$like: * is the wildcard, case-sensitive, % and _ are literal (2.2)", async () => {
    expect(await where({ title: { $like: "*a" } })).toEqual([P.alpha, P.beta]);
    expect(await where({ title: { $like: "alpha" } })).toEqual([]);
    expect(await where({ title: { $like: "Alpha" } })).toEqual([P.alpha]);
    expect(await where({ title: { $like: "*100%" } })).toEqual([P.gamma]);
    expect(await where({ content: { $like: "5%" } })).toEqual([]);
    expect(await where({ content: { $like: "50%*" } })).toEqual([P.gamma]);
    expect(await where({ title: { $like: "bet_" } })).toEqual([]);
    expect(await where({ title: { $like: "delta_*" } })).toEqual([P.delta]);
    expect(await where({ content: { $like: "HELLO*" } })).toEqual([P.delta]);
  });

  it("$ilike: * wildcard, case-insensitive (2.2)", async () => {
    expect(await where({ title: { $ilike: "alpha" } })).toEqual([P.alpha]);
    expect(await where({ content: { $ilike: "hello*" } })).toEqual([P.alpha, P.delta]);
    expect(await where({ title: { $ilike: "BET_" } })).toEqual([]);
  });

  it("$ilike folds ASCII letters only, the same on every engine (2.2, 11.2)", async () => {
    const created = await server.request("POST", "/api/data/posts", { title: "Éclair AND crème" });
    expect(created.status, created.text).toBe(201);
    try {
      expect(await where({ title: { $ilike: "éclair and *" } })).toEqual([]);
      expect(await where({ title: { $ilike: "Éclair and CRème" } })).toEqual([created.body.data.id]);
      expect(await where({ title: { $like: "Éclair AND *" } })).toEqual([created.body.data.id]);
    } finally {
      await server.request("DELETE", `/api/data/posts/${created.body.data.id}`);
    }
  });

  it("$and, $or, $not as arrays or objects; top-level keys are ANDed (2.2)", async () => {
    expect(await where({ $or: [{ views: 0 }, { title: "beta" }] })).toEqual([P.beta, P.epsilon]);
    expect(await where({ $or: { views: 0, title: "beta" } })).toEqual([P.beta, P.epsilon]);
    expect(await where({ $and: [{ published: true }, { views: { $gt: 15 } }] })).toEqual([P.delta]);
    expect(await where({ $and: { published: true, views: { $gt: 15 } } })).toEqual([P.delta]);
    expect(await where({ published: true, status: "published" })).toEqual([P.alpha, P.delta]);
    expect(await where({ $not: { published: true } })).toEqual([P.beta, P.gamma, P.epsilon]);
    expect(await where({ $not: [{ published: true }] })).toEqual([P.beta, P.gamma, P.epsilon]);
    expect(await where({ published: false, $or: [{ views: { $gte: 5 } }, { slug: null }] })).toEqual([
      P.beta,
      P.epsilon,
    ]);
  });

  it("$not of a condition that is NULL for a row excludes the row (2.2)", async () => {
    expect(await where({ $not: { views: { $gt: 5 } } })).toEqual([P.beta, P.epsilon]);
    expect(await where({ $not: { views: { $in: [5] } } })).toEqual([P.alpha, P.delta, P.epsilon]);
  });

  it("sort accepts a comma list with - for descending (2.2)", async () => {
    const w = q({ views: { $isnull: false } });
    const desc = await server.request("GET", `/api/data/posts?where=${w}&sort=-views`);
    expect(ids(desc)).toEqual([P.delta, P.alpha, P.beta, P.epsilon]);
    const multi = await server.request("GET", `/api/data/posts?where=${w}&sort=published,-views`);
    expect(ids(multi)).toEqual([P.beta, P.epsilon, P.delta, P.alpha]);
    const asc = await server.request("GET", `/api/data/posts?where=${w}&sort=views`);
    expect(ids(asc)).toEqual([P.epsilon, P.beta, P.alpha, P.delta]);
  });

  it("sort accepts { by, dir } (2.2)", async () => {
    const w = q({ views: { $isnull: false } });
    const res = await server.request("GET", `/api/data/posts?where=${w}&sort=${q({ by: "views", dir: "desc" })}`);
    expect(res.status).toBe(200);
    expect(ids(res)).toEqual([P.delta, P.alpha, P.beta, P.epsilon]);
  });

  it("select returns only the named fields (2.2)", async () => {
    const res = await server.request("GET", "/api/data/posts?select=id,title");
    expect(res.status).toBe(200);
    for (const row of res.body.data) expect(Object.keys(row).sort()).toEqual(["id", "title"]);
    const one = await server.request("GET", `/api/data/posts/${P.beta}?select=id,views`);
    expect(one.body.data).toEqual({ id: P.beta, views: 5 });
  });

  it("GET /:entity/count answers { data: { count } } (2)", async () => {
    const all = await server.request("GET", "/api/data/posts/count");
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ data: { count: 5 } });
    const some = await server.request("GET", `/api/data/posts/count?where=${q({ published: true })}`);
    expect(some.body).toEqual({ data: { count: 2 } });
  });

  it("GET /:entity/exists answers { data: { exists } } (2)", async () => {
    const yes = await server.request("GET", `/api/data/posts/exists?where=${q({ title: "beta" })}`);
    expect(yes.status).toBe(200);
    expect(yes.body).toEqual({ data: { exists: true } });
    const no = await server.request("GET", `/api/data/posts/exists?where=${q({ title: "nope" })}`);
    expect(no.body).toEqual({ data: { exists: false } });
  });

  it("POST /:entity/query takes where, sort, limit, offset, select in the body (2)", async () => {
    const res = await server.request("POST", "/api/data/posts/query", {
      where: { views: { $isnull: false } },
      sort: "-views",
      limit: 2,
      offset: 1,
      select: ["id", "views"],
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([
      { id: P.alpha, views: 10 },
      { id: P.beta, views: 5 },
    ]);
    expect(res.body.meta).toEqual({ items: 2, count: 4, total: 5, limit: 2, offset: 1 });
  });

  it("POST /:entity/query with a string select and an empty body (2)", async () => {
    const res = await server.request("POST", "/api/data/posts/query", { select: "id,title", limit: 1 });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([{ id: P.alpha, title: "Alpha" }]);
    const empty = await server.request("POST", "/api/data/posts/query", {});
    expect(empty.status).toBe(200);
    expect(empty.body.meta.count).toBe(5);
  });

  it("the users entity never shows the hidden password hash (4.8)", async () => {
    const res = await server.request("GET", "/api/data/users");
    expect(res.status).toBe(200);
    expect(res.body.data.map((u: { email: string }) => u.email)).toEqual(["a@example.com", "b@example.com"]);
    for (const u of res.body.data) {
      expect(u).not.toHaveProperty("password_hash");
      expect(u).toHaveProperty("role");
    }
    expectNoLeak(res);
  });
});
