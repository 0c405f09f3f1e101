/**
 * Entities may be named as the aliases Citadel's queries use (any identifier outside `citadel_` is an entity
 * name): an entity `s1` once shadowed the first EXISTS subquery's alias, so `@row.<field>` and a relation's keys
 * compared the subquery's row with itself and a policy's `$exists` held for every row (§4.13); an entity `sizes`
 * once clashed with the byte budget's CTE and a `with` of it was a 500 (§2.3).
 */
import { em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, guardedApp, insert, q } from "../guard/helpers.js";

const schema = em(
  {
    teams: entity("teams", { name: text() }),
    s1: entity("s1", { title: text(), team: number() }),
    members: entity("members", { team: number(), user: number() }),
    sizes: entity("sizes", { label: text() }),
  },
  ({ teams, s1, sizes }) => [relation(s1, "owner_team").manyToOne(teams), relation(sizes, "team").manyToOne(teams)],
);

const app = guardedApp(schema, {
  member: {
    permissions: [
      {
        permission: "data.entity.read",
        policies: [
          {
            condition: { entity: "s1" },
            effect: "filter",
            filter: { $exists: { entity: "members", where: { team: "@row.team", user: "@user.id" } } },
          },
          { condition: { entity: "members" }, effect: "filter", filter: { user: "@user.id" } },
          { condition: { entity: { $in: ["teams", "sizes"] } }, effect: "allow" },
        ],
      },
    ],
  },
});

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: { ann: "member" },
    rows: async (ctx, ids) => {
      await insert(ctx, "teams", [{ name: "red" }, { name: "blue" }]);
      await insert(ctx, "members", [{ team: 1, user: ids.ann }]);
      await insert(ctx, "s1", [
        { title: "team 1 doc", team: 1, owner_team_id: 1 },
        { title: "team 2 secret", team: 2, owner_team_id: 2 },
      ]);
      await insert(ctx, "sizes", [{ label: "small", team_id: 1 }]);
    },
  });
});
afterAll(() => b.server.close());

const titles = (res: { status: number; text: string; body: { data: { title: string }[] } }) => {
  expect(res.status, res.text).toBe(200);
  return res.body.data.map((r) => r.title);
};

describe("entities named like the aliases of Citadel's queries (4.13, 2.3)", () => {
  it("an entity named s1: a policy's $exists with @row and a caller's relation path still reach the outer row", async () => {
    expect(titles(await b.as("ann", "GET", "/api/data/s1?sort=id"))).toEqual(["team 1 doc"]);
    const path = await b.as("ann", "GET", `/api/data/s1?sort=id&where=${q({ "owner_team.name": "blue" })}`);
    expect(titles(path)).toEqual([]);
  });

  it("an entity named sizes is read in a with (its byte budget is measured)", async () => {
    const res = await b.as("ann", "GET", "/api/data/teams?sort=id&with=sizes");
    expect(res.status, res.text).toBe(200);
    expect(res.body.data[0].sizes.map((r: { label: string }) => r.label)).toEqual(["small"]);
  });
});
