/**
 * A caller's where counts the values of every filter it embeds against its bound (§2.3, §4.13): each `$exists`
 * or relation hop carries the read filter of the entity it reaches, bound again for each hop. Uncounted, 70 hops
 * into an entity whose read rule lists 1,000 values bound 70,000 parameters: PostgreSQL's protocol holds 65,535
 * (a 500). Counted, it is a 400 naming the bound, on every engine.
 */
import { em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, guardedApp, insert } from "../guard/helpers.js";

const CODES = Array.from({ length: 1000 }, (_, i) => i);
const schema = em(
  { posts: entity("posts", { title: text() }), tags: entity("tags", { code: number() }) },
  ({ posts, tags }) => [relation(tags, "post").manyToOne(posts)],
);
const app = guardedApp(schema, {
  anonymous: {
    is_default: true,
    permissions: [
      {
        permission: "data.entity.read",
        policies: [
          { condition: { entity: "posts" }, effect: "allow" },
          { condition: { entity: "tags" }, effect: "filter", rule: `code in [${CODES.join(",")}]` },
        ],
      },
    ],
  },
});

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    rows: async (ctx) => {
      await insert(ctx, "posts", [{ title: "p" }]);
      await insert(ctx, "tags", [{ code: 3, post_id: 1 }]);
    },
  });
});
afterAll(() => b.server.close());

describe("the read filters a where embeds count against its values (2.3, 4.13)", () => {
  const hops = (n: number, hop: (i: number) => Record<string, unknown>) => ({
    $or: Array.from({ length: n }, (_, i) => hop(i)),
  });
  const query = (where: unknown) => b.as(ANON, "POST", "/api/data/posts/query", { where });

  for (const [name, hop] of [
    ["$exists", (i: number) => ({ $exists: { entity: "tags", where: { code: i + 3 } } })],
    ["a relation path", (i: number) => ({ tags: { $some: { code: i + 3 } } })],
    ["$every", (i: number) => ({ tags: { $every: { code: i + 3 } } })],
  ] as const)
    it(`70 × ${name} into an entity whose read rule binds 1,000 values: 400 naming the bound`, async () => {
      const few = await query(hops(2, hop));
      expect(few.status, few.text).toBe(200);
      expect(few.body.data.map((r: { title: string }) => r.title)).toEqual(["p"]);
      const res = await query(hops(70, hop));
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toMatch(
        /more than 5000 values in one where \(with those of the read filter of "tags"\)/,
      );
    });
});
