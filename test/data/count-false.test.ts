/**
 * §2.5: a list may skip its totals (`?count=false`, body `count: false`, on the canonical and bknd routes); then
 * `meta.count` and `meta.total` are absent and the list is one SQL statement, whatever the table's size.
 */
import { em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { countStatements } from "../helpers/statements.js";
import { expectError, q } from "./fixtures.js";

const schema = em(
  { lists: entity("lists", { name: text() }), items: entity("items", { name: text(), n: number({ integer: true }) }) },
  ({ lists, items }) => [relation(items, "list").manyToOne(lists)],
);
const ROWS = 5_000;
const where = q({ n: { $lt: 2_500 } });

describe.each(ENGINE_DRIVERS)("lists without totals (%s)", (driver) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ data: schema.toJSON() }, { driver });
    expect((await server.request("POST", "/api/data/lists", { name: "all" })).status).toBe(201);
    for (let start = 0; start < ROWS; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, i) => ({ name: `i${start + i}`, n: start + i, list_id: 1 }));
      expect((await server.request("POST", "/api/data/items", batch)).status).toBe(201);
    }
  });
  afterAll(() => server?.close());

  it("?count=false answers the page without meta.count and meta.total, on every list route (2.5)", async () => {
    const lists = [
      ["GET", `/api/data/items?count=false&limit=10&where=${where}`],
      ["GET", `/api/data/entity/items?count=false&limit=10&where=${where}`],
      ["POST", "/api/data/items/query", { count: false, limit: 10, where: { n: { $lt: 2_500 } } }],
      ["POST", "/api/data/entity/items/query", { count: false, limit: 10, where: { n: { $lt: 2_500 } } }],
      ["GET", "/api/data/lists/1/items?count=false&limit=10"],
      ["GET", "/api/data/entity/lists/1/items?count=false&limit=10"],
    ] as const;
    for (const [method, path, body] of lists) {
      const res = await server.request(method, path, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(200);
      expect(res.body.meta, path).toEqual({ items: 10, limit: 10, offset: 0 });
      expect(res.body.data.map((r: { n: number }) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
  });

  it("count=true, the default, answers both figures (2.1, 2.5)", async () => {
    for (const count of ["", "&count=true"]) {
      const res = await server.request("GET", `/api/data/items?limit=10&offset=20&where=${where}${count}`);
      expect(res.body.meta).toEqual({ items: 10, count: 2_500, total: ROWS, limit: 10, offset: 20 });
    }
    const body = await server.request("POST", "/api/data/items/query", { count: true, limit: 1 });
    expect(body.body.meta).toEqual({ items: 1, count: ROWS, total: ROWS, limit: 1, offset: 0 });
  });

  it("count is true or false; anything else is 400 naming count (2.3, 2.5)", async () => {
    for (const value of ["yes", "1", "0", "", "False", "null"]) {
      const res = await server.request("GET", `/api/data/items?count=${value}`);
      expectError(res, 400, "bad_request");
      expect(res.body.error.message).toMatch(/^count: /);
      expect(res.body.error.path).toBe("count");
    }
    for (const value of [1, 0, null, "", {}, []]) {
      const res = await server.request("POST", "/api/data/items/query", { count: value });
      expectError(res, 400, "bad_request");
      expect(res.body.error.message).toMatch(/^count: /);
    }
  });

  it("a list without totals is one SQL statement on a large table; with them, three (2.5)", async () => {
    const counted = countStatements(server.app);
    const page = await counted.data.list("items", { where: { n: { $lt: 2_500 } }, limit: 10, count: false });
    expect(page.meta).toEqual({ items: 10, limit: 10, offset: 0 });
    expect(counted.statements()).toEqual(["SelectQueryNode"]);
    counted.reset();
    const counts = await counted.data.list("items", { where: { n: { $lt: 2_500 } }, limit: 10 });
    expect(counts.meta).toEqual({ items: 10, count: 2_500, total: ROWS, limit: 10, offset: 0 });
    expect(counted.statements()).toEqual(["SelectQueryNode", "SelectQueryNode", "SelectQueryNode"]);
  });
});
