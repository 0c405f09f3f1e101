/** A write to many rows is bounded (2.3): past the limit it is a 400 and nothing changes. */
import { em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE } from "../helpers/engines.js";
import { startServer, type TestServer } from "../helpers/server.js";

const schema = em({ items: entity("items", { name: text() }) });
const ROWS = 10_001;
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ data: schema.toJSON() });
  for (let start = 0; start < ROWS; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, ROWS - start) }, (_, i) => ({ name: `n${start + i}` }));
    expect((await server.request("POST", "/api/data/items", batch)).status).toBe(201);
  }
});
afterAll(() => server.close());

describe("writes to many rows (2.3)", () => {
  it("a delete matching more than 10,000 rows is 400 and deletes nothing", async () => {
    const res = await server.request("DELETE", "/api/data/items", { id: { $gt: 0 } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("more than 10000 rows");
    const count = await server.request("GET", "/api/data/items/count");
    expect(count.body.data.count).toBe(ROWS);
  });

  it("an update matching more than 10,000 rows is 400 and updates nothing", async () => {
    const res = await server.request("PATCH", "/api/data/items", { update: { name: "x" }, where: { id: { $gt: 0 } } });
    expect(res.status).toBe(400);
    const changed = await server.request("GET", `/api/data/items/count?where=${encodeURIComponent('{"name":"x"}')}`);
    expect(changed.body.data.count).toBe(0);
  });

  it("a create of more than 1000 rows is 400", async () => {
    const res = await server.request(
      "POST",
      "/api/data/items",
      Array.from({ length: 1001 }, () => ({ name: "y" })),
    );
    expect(res.status).toBe(400);
  });
});

/**
 * A delete cascading down a self-referencing key runs on SQLite as nested triggers, at most 1,000 deep: a deeper
 * chain (a thread of replies anyone may grow) is 400 saying so, never a 500, and nothing is deleted. PostgreSQL
 * has no such limit. The chain is written in one statement (a recursive CTE), not 1,100 requests.
 */
describe("a cascade deeper than the engine allows (2.3)", () => {
  const DEPTH = 1100;
  const threads = em({ nodes: entity("nodes", { label: text() }) }, ({ nodes }) => [
    relation(nodes, "parent").manyToOne(nodes, { on_delete: "cascade", inversedBy: "children" }),
  ]);
  let nodes: TestServer;
  beforeAll(async () => {
    nodes = await startServer({ data: threads.toJSON() });
    await nodes.rows(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${DEPTH})
       INSERT INTO nodes (id, label, parent_id, created_at, updated_at)
       SELECT i, 'n', CASE WHEN i = 1 THEN NULL ELSE i - 1 END, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n`,
    );
  });
  afterAll(() => nodes?.close());

  it(ENGINE === "postgres" ? "deletes the whole chain" : "is 400 naming the limit and deletes nothing", async () => {
    const res = await nodes.request("DELETE", "/api/data/nodes/1");
    const left = async () => Number((await nodes.rows("SELECT count(*) AS n FROM nodes"))[0]!.n);
    if (ENGINE === "postgres") {
      expect(res.status, res.text).toBe(200);
      expect(await left()).toBe(0);
      return;
    }
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toMatch(/cascades through more levels of rows than the database allows/);
    expect(await left()).toBe(DEPTH);
    // from the middle of the chain down, within the limit: deleted
    expect((await nodes.request("DELETE", `/api/data/nodes/${DEPTH - 500}`)).status).toBe(200);
    expect((await nodes.request("DELETE", "/api/data/nodes/1")).status).toBe(200);
    expect(await left()).toBe(0);
  });
});
