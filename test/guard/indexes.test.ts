/** Policy filter columns are indexed at startup so the guard's WHERE is cheap (issue 4, "guard's work in SQL"). */
import { em, entity, text } from "citadel";
import { describe, expect, it } from "vitest";
import { blog } from "../../examples/blog/config.js";
import { ENGINE } from "../helpers/engines.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { testConfig } from "./helpers.js";

/** The policy indexes (`policy_idx_*`) and their tables, as the engine's catalog lists them. */
const policyIndexes = (server: TestServer) =>
  server.rows(
    ENGINE === "postgres"
      ? "select indexname as name, tablename as tbl_name from pg_indexes where indexname like 'policy_idx_%' order by indexname"
      : "select name, tbl_name from sqlite_master where type = 'index' and name like 'policy_idx_%' order by name",
  );

describe("policy indexes", () => {
  it("the blog's policy columns get an index; columns already indexed do not get a second one", async () => {
    const server = await startServer(testConfig(blog.config));
    try {
      expect(await policyIndexes(server)).toEqual([
        { name: "policy_idx_comments_approved", tbl_name: "comments" },
        { name: "policy_idx_posts_published", tbl_name: "posts" },
      ]);
      // author_id (the author role's filter) already leads the foreign-key index
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
      const names = (await policyIndexes(server)).map((r) => r.name);
      expect(names).toEqual(["policy_idx_grants_team_code", "policy_idx_grants_user_email", "policy_idx_teams_name"]);
    } finally {
      await server.close();
    }
  });
});
