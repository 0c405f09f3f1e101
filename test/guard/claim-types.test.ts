/**
 * A claim of another type than the value it is compared with is unknown (§4.12, §9.1), in a condition and in a
 * rule, as it is against a column of another type: an unknown allow or filter does not apply, an unknown deny
 * does. An identity provider may send a clearance as the string "5" (or "abc", or true): compared by order
 * with 3 it must not come out TRUE as SQLite orders text after every number. A number claim compared with a
 * text value is its text, as against a text column.
 */
import { em, entity, number, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewerServer, type ViewerServer } from "../helpers/idp.js";

const schema = em({
  docs: entity("docs", { name: text() }),
  memos: entity("memos", { name: text() }),
  secrets: entity("secrets", { name: text(), min_level: number() }),
  vault: entity("vault", { name: text() }),
  safes: entity("safes", { name: text() }),
  teams: entity("teams", { name: text(), code: text() }),
  rosters: entity("rosters", { name: text() }),
});

describe("a claim compared with a value of another type is unknown (4.12, 9.1)", () => {
  let viewer: ViewerServer;

  beforeAll(async () => {
    viewer = await startViewerServer(schema.toJSON(), [
      {
        permission: "data.entity.read",
        policies: [
          { condition: { entity: "docs" }, effect: "allow", rule: "user.clearance >= 3" },
          { condition: { entity: "memos", "user.clearance": { $gte: 3 } }, effect: "allow" },
          { condition: { entity: "secrets" }, effect: "filter", rule: "min_level <= user.clearance" },
          { condition: { entity: ["vault", "safes"] }, effect: "allow" },
          { condition: { entity: "vault", "user.clearance": { $lt: 3 } }, effect: "deny" },
          { condition: { entity: "safes" }, effect: "deny", rule: "user.clearance < 3" },
          { condition: { entity: "teams" }, effect: "filter", rule: "code == user.team" },
          { condition: { entity: "rosters" }, effect: "allow", rule: "user.team == '7'" },
        ],
      },
    ]);
    for (const name of ["docs", "memos", "vault", "safes", "rosters"])
      await viewer.server.app.module.data.create(name, { name: `${name} 1` });
    await viewer.server.app.module.data.create("secrets", { name: "secrets 1", min_level: 3 });
    await viewer.server.app.module.data.create("teams", { name: "teams 1", code: "7" });
  });
  afterAll(() => viewer?.close());

  it('a clearance of "5", "0", "abc" or true compared with 3: allows do not apply, denies do', async () => {
    // the number 5 reads all, 0 nothing
    for (const name of ["docs", "memos", "secrets", "vault", "safes"])
      expect(await viewer.names(name, { clearance: 5 }), name).toEqual([`${name} 1`]);
    for (const name of ["docs", "memos", "vault", "safes"])
      expect(await viewer.names(name, { clearance: 0 }), name).toBe(403);
    expect(await viewer.names("secrets", { clearance: 0 })).toEqual([]);
    for (const clearance of ["5", "0", "abc", true]) {
      const as = JSON.stringify(clearance);
      expect(await viewer.names("docs", { clearance }), `rule allow, ${as}`).toBe(403);
      expect(await viewer.names("memos", { clearance }), `condition allow, ${as}`).toBe(403);
      expect(await viewer.names("secrets", { clearance }), `row filter, ${as}`).toEqual([]);
      expect(await viewer.names("vault", { clearance }), `condition deny, ${as}`).toBe(403);
      expect(await viewer.names("safes", { clearance }), `rule deny, ${as}`).toBe(403);
    }
  });

  it("a number claim compared with text is its text, in a condition as against a column", async () => {
    expect(await viewer.names("teams", { team: 7 })).toEqual(["teams 1"]);
    expect(await viewer.names("rosters", { team: 7 })).toEqual(["rosters 1"]);
    expect(await viewer.names("rosters", { team: 8 })).toBe(403);
  });
});
