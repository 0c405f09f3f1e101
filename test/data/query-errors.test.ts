/** §2.3: bad where / sort / select / with inputs are 400 naming the offending part, never 500 or a leak. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, create, expectError, q } from "./fixtures.js";

/** `{ $and: [ { $and: [ ... { title: "x" } ] } ] }` nested `levels` combinators deep. */
const nested = (levels: number): unknown => {
  let w: unknown = { title: "x" };
  for (let i = 0; i < levels; i++) w = { $and: [w] };
  return w;
};

describe.each(ENGINE_DRIVERS)("data API query errors (%s)", (driver) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(config, { driver });
    await create(server, "posts", [{ title: "one", views: 1 }, { title: "two" }]);
    await create(server, "users", { email: "u@example.com" });
  });
  afterAll(async () => {
    await server?.close();
  });

  const badWhere = async (where: string, ...mentions: string[]) => {
    for (const path of [`/api/data/posts?where=${where}`, `/api/data/posts/count?where=${where}`]) {
      const res = await server.request("GET", path);
      expectError(res, 400, "bad_request");
      for (const m of mentions) expect(res.body.error.message).toContain(m);
    }
  };

  it("unknown fields in where are 400 naming the field (2.3)", async () => {
    await badWhere(q({ nosuchfield: 1 }), "nosuchfield");
    await badWhere(q({ $or: [{ title: "a" }, { ghostly: 1 }] }), "ghostly");
  });

  it("unknown operators are 400 naming the operator (2.3)", async () => {
    await badWhere(q({ title: { $foo: "a" } }), "$foo");
    await badWhere(q({ $xor: [{ title: "a" }] }), "$xor");
    await badWhere(q({ title: { $regex: ".*" } }), "$regex");
  });

  it("wrong value types are 400 naming the field (2.3)", async () => {
    await badWhere(q({ views: "abc" }), "views");
    await badWhere(q({ published: "yes" }), "published");
    await badWhere(q({ views: { $gt: "5" } }), "views");
    await badWhere(q({ title: { $isnull: "yes" } }), "title");
    await badWhere(q({ title: { $like: 5 } }), "title");
  });

  it("malformed JSON in the where param is 400 (2.3)", async () => {
    await badWhere(encodeURIComponent("{bad json"), "where");
    await badWhere(encodeURIComponent('{"title":'), "where");
  });

  it("a where that is not an object is 400 (2.3)", async () => {
    await badWhere(q([1, 2]));
    await badWhere(q("title"));
    await badWhere(q(5));
  });

  it("$in with a non-array is 400 (2.3)", async () => {
    await badWhere(q({ views: { $in: 5 } }), "$in");
    await badWhere(q({ views: { $nin: "a" } }), "$nin");
  });

  it("$between needs exactly 2 items (2.3)", async () => {
    await badWhere(q({ views: { $between: [1] } }), "$between");
    await badWhere(q({ views: { $between: [1, 2, 3] } }), "$between");
    await badWhere(q({ views: { $between: 1 } }), "$between");
  });

  it("nesting deeper than 8 levels is 400, shallow nesting is fine (2.2, 2.3)", async () => {
    await badWhere(q(nested(12)));
    const ok = await server.request("GET", `/api/data/posts?where=${q(nested(3))}`);
    expect(ok.status).toBe(200);
    expect(ok.body.data).toEqual([]);
  });

  it("combinators with a scalar are 400 (2.3)", async () => {
    await badWhere(q({ $and: 5 }), "$and");
    await badWhere(q({ $or: "x" }), "$or");
  });

  it("bad where in POST query, count and exists routes is 400 (2.3)", async () => {
    const a = await server.request("POST", "/api/data/posts/query", { where: { nope: 1 } });
    expectError(a, 400, "bad_request");
    expect(a.body.error.message).toContain("nope");
    const b = await server.request("GET", `/api/data/posts/exists?where=${q({ nope: 1 })}`);
    expectError(b, 400, "bad_request");
    expect(b.body.error.message).toContain("nope");
  });

  it("unknown sort fields are 400 (2.2, 2.3)", async () => {
    const a = await server.request("GET", "/api/data/posts?sort=-nosuch");
    expectError(a, 400, "bad_request");
    expect(a.body.error.message).toContain("nosuch");
    const b = await server.request("GET", `/api/data/posts?sort=${q({ by: "nosuch", dir: "desc" })}`);
    expectError(b, 400, "bad_request");
  });

  it("unknown select fields are 400 (2.2, 2.3)", async () => {
    const res = await server.request("GET", "/api/data/posts?select=id,nosuch");
    expectError(res, 400, "bad_request");
    expect(res.body.error.message).toContain("nosuch");
  });

  it("unknown relations in with are 400 (2.2, 2.3)", async () => {
    const res = await server.request("GET", "/api/data/posts?with=nosuch");
    expectError(res, 400, "bad_request");
    expect(res.body.error.message).toContain("nosuch");
    const json = await server.request("GET", `/api/data/posts?with=${q({ nosuch: {} })}`);
    expectError(json, 400, "bad_request");
  });

  it("an unknown key in a query body, a with object or an update-many body is 400 naming it and the nearest known key; nothing is written (2.3)", async () => {
    const cases: [string, string, unknown, string, string][] = [
      ["POST", "/api/data/posts/query", { wehre: { id: -1 } }, "wehre", "did you mean `where`?"],
      ["POST", "/api/data/entity/posts/query", { where: { id: -1 }, limt: 1 }, "limt", "did you mean `limit`?"],
      [
        "POST",
        "/api/data/posts/query",
        { with: { comments: { wehre: { id: -1 } } } },
        "with.comments.wehre",
        "did you mean `where`?",
      ],
      ["GET", `/api/data/posts?with=${q({ comments: { limt: 1 } })}`, undefined, "with.comments.limt", "`limit`"],
      ["PATCH", "/api/data/posts", { update: { title: "x" }, where: { title: "one" }, extra: 1 }, "extra", "`where`"],
      ["PATCH", "/api/data/entity/posts", { updaet: { title: "x" }, where: { title: "one" } }, "updaet", "`update`"],
    ];
    for (const [method, path, body, at, hint] of cases) {
      const res = await server.request(method, path, body);
      expectError(res, 400, "bad_request");
      expect(res.body.error.path, `${method} ${path}`).toBe(at);
      expect(res.body.error.message).toContain(`unknown key \`${at.split(".").pop()}\``);
      expect(res.body.error.message).toContain(hint);
    }
    const one = await server.request("GET", `/api/data/posts?where=${q({ title: "one" })}`);
    expect(one.body.data).toHaveLength(1);
    // a query string may carry parameters of its own (a cache buster): only JSON objects are strict
    expect((await server.request("GET", "/api/data/posts?_=1700000000&limit=1")).status).toBe(200);
  });

  it("the hidden password hash is 400 in where/sort/select, worded like an unknown field (2.3, 4.8)", async () => {
    const norm = (msg: string, name: string) => msg.replaceAll(name, "<F>");
    const cases: [string, string][] = [
      [`where=${q({ password_hash: "x" })}`, `where=${q({ zz_unknown: "x" })}`],
      ["sort=password_hash", "sort=zz_unknown"],
      ["select=id,password_hash", "select=id,zz_unknown"],
    ];
    for (const [hidden, unknown] of cases) {
      const h = await server.request("GET", `/api/data/users?${hidden}`);
      const u = await server.request("GET", `/api/data/users?${unknown}`);
      expectError(h, 400, "bad_request");
      expectError(u, 400, "bad_request");
      expect(norm(h.body.error.message, "password_hash")).toBe(norm(u.body.error.message, "zz_unknown"));
    }
  });

  it("user strings never become SQL text (2.3)", async () => {
    const evil = "x' OR 1=1; DROP TABLE posts; --";
    const res = await server.request("GET", `/api/data/posts?where=${q({ title: evil })}`);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    const col = await server.request("GET", `/api/data/posts?where=${q({ [evil]: 1 })}`);
    expectError(col, 400, "bad_request");
    const after = await server.request("GET", "/api/data/posts");
    expect(after.body.meta.total).toBe(2);
  });
});
