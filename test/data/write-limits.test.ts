/** A write to many rows is bounded (2.3): past the limit it is a 400 and nothing changes. */
import { em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
