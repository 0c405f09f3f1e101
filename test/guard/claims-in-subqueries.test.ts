/**
 * A claim the caller lacks is unknown inside `exists(…)` as well (§4.12, §9.1): an unknown deny applies and an
 * unknown allow does not. Bound as SQL NULL inside the subquery, `dept == user.dept` was UNKNOWN for every row,
 * EXISTS made that FALSE, and a deny through exists(…) let in the very callers it names by a missing claim.
 */
import { em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewerServer, type ViewerServer } from "../helpers/idp.js";

const schema = em({
  docs: entity("docs", { name: text() }),
  notes: entity("notes", { name: text() }),
  memos: entity("memos", { name: text() }),
  files: entity("files", { name: text() }),
  blocked: entity("blocked", { dept: text() }),
});

describe("a missing claim inside exists(…) is unknown (4.12, 9.1)", () => {
  let viewer: ViewerServer;

  beforeAll(async () => {
    viewer = await startViewerServer(schema.toJSON(), [
      {
        permission: "data.entity.read",
        policies: [
          { condition: { entity: { $in: ["docs", "notes", "memos"] } }, effect: "allow" },
          { condition: { entity: "files" }, effect: "allow", rule: "exists(blocked, dept == user.dept)" },
        ],
      },
      {
        permission: "data.entity.read",
        effect: "deny",
        policies: [
          { condition: { entity: "docs" }, effect: "deny", rule: "user.dept in ['contractors']" },
          { condition: { entity: "notes" }, effect: "deny", rule: "exists(blocked, dept == user.dept)" },
          { condition: { entity: "memos" }, effect: "deny", rule: "exists(blocked, not (dept != user.dept))" },
        ],
      },
    ]);
    for (const name of ["docs", "notes", "memos", "files"])
      await viewer.server.app.module.data.create(name, { name: `${name} 1` });
    await viewer.server.app.module.data.create("blocked", { dept: "contractors" });
  });
  afterAll(() => viewer?.close());

  it("a deny through exists(…) applies to a caller without the claim, as a deny naming the claim does", async () => {
    for (const name of ["docs", "notes", "memos"])
      expect(await viewer.names(name, { dept: "staff" }), name).toEqual([`${name} 1`]);
    expect(await viewer.names("docs", { dept: "contractors" })).toBe(403);
    expect(await viewer.names("docs", {})).toBe(403);
    for (const name of ["notes", "memos"]) {
      expect(await viewer.names(name, { dept: "contractors" }), name).toEqual([]);
      expect(await viewer.names(name, {}), `${name}, no claim`).toEqual([]);
      expect(await viewer.names(name, { dept: ["contractors"] }), `${name}, no scalar claim`).toEqual([]);
    }
    // and an allow through exists(…) does not apply without the claim
    expect(await viewer.names("files", { dept: "contractors" })).toEqual(["files 1"]);
    expect(await viewer.names("files", { dept: "staff" })).toEqual([]);
    expect(await viewer.names("files", {})).toEqual([]);
  });
});
