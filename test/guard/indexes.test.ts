/** Policy filter columns are indexed at startup so the guard's WHERE is cheap (issue 4, "guard's work in SQL"). */
import Database from "better-sqlite3";
import { em, entity, text } from "citadel";
import { describe, expect, it } from "vitest";
import { blog } from "../../examples/blog/config.js";
import { startServer } from "../helpers/server.js";
import { testConfig } from "./helpers.js";

describe("policy indexes", () => {
  it("the blog's policy columns get an index; columns already indexed do not get a second one", async () => {
    const server = await startServer(testConfig(blog.config));
    try {
      const db = new Database(server.dbFile, { readonly: true });
      const indexes = db
        .prepare(
          "select name, tbl_name from sqlite_master where type = 'index' and name like 'policy_idx_%' order by name",
        )
        .all();
      const plan = db
        .prepare("explain query plan select count(*) from posts where published = 1")
        .all()
        .map((r) => (r as { detail: string }).detail);
      db.close();
      expect(indexes).toEqual([
        { name: "policy_idx_comments_approved", tbl_name: "comments" },
        { name: "policy_idx_posts_published", tbl_name: "posts" },
      ]);
      // author_id (the author role's filter) already leads the foreign-key index
      expect(plan.join(" ")).toContain("policy_idx_posts_published");
    } finally {
      await server.close();
    }
  });

  it("columns a subquery of a policy filter compares are indexed in their own table (4.13)", async () => {
    const schema = em(
      {
        teams: entity("teams", { name: text() }),
        grants: entity("grants", { team_code: text(), user_email: text() }),
        users: entity("users", {}),
      },
      () => [],
    );
    const server = await startServer(
      testConfig({
        data: schema.toJSON(),
        auth: {
          enabled: true,
          roles: {
            member: {
              permissions: [
                {
                  permission: "data.entity.read",
                  policies: [
                    {
                      condition: { entity: "teams" },
                      effect: "filter",
                      filter: {
                        $exists: { entity: "grants", where: { team_code: "@row.name", user_email: "@user.email" } },
                      },
                    },
                  ],
                },
              ],
            },
          },
        },
      }),
    );
    try {
      const db = new Database(server.dbFile, { readonly: true });
      const names = db
        .prepare("select name from sqlite_master where type = 'index' and name like 'policy_idx_%' order by name")
        .all()
        .map((r) => (r as { name: string }).name);
      db.close();
      expect(names).toEqual(["policy_idx_grants_team_code", "policy_idx_grants_user_email", "policy_idx_teams_name"]);
    } finally {
      await server.close();
    }
  });
});
