/**
 * A claim holding U+0000 is no value (§4.4, §2.3, §11.2): PostgreSQL's text cannot hold it, and bound into a
 * policy filter or a rule it failed every read of that caller with a 500 where SQLite answered an empty list.
 * No stored value holds it (writes refuse it), so it matches nothing, like any claim that fits no column.
 */
import { em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewerServer, type ViewerServer } from "../helpers/idp.js";

const schema = em({
  docs: entity("docs", { name: text(), dept: text() }),
  notes: entity("notes", { name: text(), dept: text() }),
  memos: entity("memos", { name: text() }),
  depts: entity("depts", { dept: text() }),
});

describe("a claim holding U+0000 binds as no value (4.4, 11.2)", () => {
  let viewer: ViewerServer;
  const read = async (entityName: string, dept: string) => {
    const res = await viewer.get(`/api/data/${entityName}`, { dept });
    expect(res.status, `${entityName}: ${res.text}`).toBe(200);
    return res.body.data.map((r: { name: string }) => r.name);
  };

  beforeAll(async () => {
    viewer = await startViewerServer(schema.toJSON(), [
      {
        permission: "data.entity.read",
        policies: [
          { condition: { entity: "docs" }, effect: "filter", filter: { dept: "@user.dept" } },
          { condition: { entity: "notes" }, effect: "filter", rule: "dept == user.dept" },
          { condition: { entity: "memos" }, effect: "filter", rule: "exists(depts, dept == user.dept)" },
        ],
      },
    ]);
    for (const name of ["docs", "notes"])
      await viewer.server.app.module.data.create(name, { name: `${name} 1`, dept: "x" });
    await viewer.server.app.module.data.create("memos", { name: "memos 1" });
    await viewer.server.app.module.data.create("depts", { dept: "x" });
  });
  afterAll(() => viewer?.close());

  it("in a policy filter, a rule and a rule's exists(…): an empty list, not a 500", async () => {
    for (const name of ["docs", "notes", "memos"]) {
      expect(await read(name, "x")).toEqual([`${name} 1`]);
      expect(await read(name, "x\u0000")).toEqual([]);
    }
  });
});
