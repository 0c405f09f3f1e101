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
 * has no such limit, but while audit or the feed record the delete its fallout is walked level by level, and a
 * request walks at most 1,000 levels on every engine. The chain is written in one statement (a recursive CTE).
 */
describe("a cascade deeper than the engine allows (2.3)", () => {
  const DEPTH = 1100;
  const threads = em({ nodes: entity("nodes", { label: text() }) }, ({ nodes }) => [
    relation(nodes, "parent").manyToOne(nodes, { on_delete: "cascade", inversedBy: "children" }),
  ]);
  const chain = async (server: TestServer) =>
    server.rows(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${DEPTH})
       INSERT INTO nodes (id, label, parent_id, created_at, updated_at)
       SELECT i, 'n', CASE WHEN i = 1 THEN NULL ELSE i - 1 END, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM n`,
    );
  const left = async (server: TestServer) => Number((await server.rows("SELECT count(*) AS n FROM nodes"))[0]!.n);
  const expectTooDeep = async (server: TestServer) => {
    const res = await server.request("DELETE", "/api/data/nodes/1");
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toMatch(/cascades through more levels of rows than the database allows/);
    expect(await left(server)).toBe(DEPTH);
    // from the middle of the chain down, within the limit: deleted
    expect((await server.request("DELETE", `/api/data/nodes/${DEPTH - 500}`)).status).toBe(200);
    expect((await server.request("DELETE", "/api/data/nodes/1")).status).toBe(200);
    expect(await left(server)).toBe(0);
  };

  it(
    ENGINE === "postgres" ? "without events: deletes the whole chain" : "without events: 400 naming the limit",
    async () => {
      const nodes = await startServer({ data: threads.toJSON(), feed: { enabled: false } });
      try {
        await chain(nodes);
        if (ENGINE !== "postgres") return await expectTooDeep(nodes);
        expect((await nodes.request("DELETE", "/api/data/nodes/1")).status).toBe(200);
        expect(await left(nodes)).toBe(0);
      } finally {
        await nodes.close();
      }
    },
  );

  it("while audit records it: 400 naming the limit on every engine, in one query, before any image is read", async () => {
    const nodes = await startServer({ data: threads.toJSON(), audit: { enabled: true } });
    try {
      await chain(nodes);
      const res = await nodes.request("DELETE", "/api/data/nodes/1");
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toMatch(/cascades through more levels of rows than the database allows/);
      expect(await left(nodes)).toBe(DEPTH);
      expect(
        await nodes.rows("SELECT id FROM citadel_audit WHERE entity = 'nodes' AND action = 'data.delete'"),
      ).toEqual([]);
    } finally {
      await nodes.close();
    }
  });
});
