/** Policy filter columns are indexed at startup so the guard's WHERE is cheap (issue 4, "guard's work in SQL"). */
import Database from "better-sqlite3";
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
});
