/**
 * Values one engine takes and another cannot (§2.3, §11.2): each request means the same on every engine, and
 * none is a 500. U+0000 cannot be stored in PostgreSQL text, so it is 400 everywhere; integers are exact up to
 * 2^53 (a JSON number beyond is not), so integer fields take that range everywhere, ids and integer fields
 * hold 64-bit values on PostgreSQL as on SQLite, and a where compares an integer field with any number.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config, expectError, ids, q, sorted } from "../data/fixtures.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
const post = (body: unknown) => server.request("POST", "/api/data/posts", body);
const where = async (w: unknown) => {
  const res = await server.request("GET", `/api/data/posts?where=${q(w)}&limit=1000`);
  expect(res.status, res.text).toBe(200);
  return sorted(ids(res));
};

beforeAll(async () => {
  server = await startServer(config);
});
afterAll(() => server?.close());

describe("U+0000 is refused wherever text comes in (2.3, 11.2)", () => {
  it("in a body's string or key: 400 naming the path, nothing written", async () => {
    const before = await server.rows("select count(*) as n from posts");
    for (const body of [
      '{"title":"nul\\u0000byte"}',
      '{"title":"ok","meta":{"a\\u0000":1}}',
      '{"title":"ok","meta":["\\u0000"]}',
    ]) {
      const res = await server.request("POST", "/api/data/posts", body);
      expectError(res, 400, "bad_request");
      expect(res.body.error.message).toContain("U+0000");
    }
    expect((await post({ title: "x", meta: { list: ["\u0000"] } })).body.error.path).toBe("meta.list.0");
    expect(await server.rows("select count(*) as n from posts")).toEqual(before);
  });

  it("in a where, escaped in JSON or percent-encoded: 400", async () => {
    for (const query of [
      `where=${q({ title: "a\u0000" })}`,
      `where=${q({ title: { $like: "a\u0000*" } })}`,
      "sort=%00",
    ]) {
      const res = await server.request("GET", `/api/data/posts?${query}`);
      expectError(res, 400, "bad_request");
    }
  });
});

describe("integers (2.3, 11.2)", () => {
  it("an integer field takes values beyond 32 bits, up to 2^53 - 1, and gives them back exactly", async () => {
    for (const views of [2 ** 31, 9_999_999_999, Number.MAX_SAFE_INTEGER]) {
      const res = await post({ title: `views ${views}`, views });
      expect(res.status, res.text).toBe(201);
      expect(res.body.data.views).toBe(views);
      expect(await where({ views })).toEqual([res.body.data.id]);
    }
  });

  it("an integer beyond 2^53 in a body is 400 naming the field, not a rounded value or a 500", async () => {
    for (const views of [2 ** 53, 1e20, -1e20]) {
      const res = await post({ title: "too big", views });
      expectError(res, 400, "validation_failed");
      expect(res.body.error.fields.views[0]).toMatch(/must be an integer between/);
    }
  });

  it("a where compares an integer field with fractions and huge numbers as numbers", async () => {
    const three = (await post({ title: "three", views: 3 })).body.data.id;
    const four = (await post({ title: "four", views: 4 })).body.data.id;
    expect(await where({ views: 3.5 })).toEqual([]);
    expect(await where({ $and: [{ views: { $gt: 2.5 } }, { views: { $lt: 4.5 } }] })).toEqual([three, four]);
    expect(await where({ $and: [{ views: { $gt: 3.5 } }, { views: { $lt: 1e20 } }, { title: "four" }] })).toEqual([
      four,
    ]);
    expect(await where({ views: 1e20 })).toEqual([]);
  });

  it("ids beyond 32 bits are ids that do not exist: 404 on the route, nothing in a where", async () => {
    expectError(await server.request("GET", "/api/data/posts/99999999999"), 404, "not_found");
    expectError(await server.request("PATCH", "/api/data/posts/99999999999", { title: "x" }), 404, "not_found");
    expect(await where({ id: 99_999_999_999 })).toEqual([]);
    expect(await where({ id: { $in: [99_999_999_999, -4_294_967_296] } })).toEqual([]);
  });
});
