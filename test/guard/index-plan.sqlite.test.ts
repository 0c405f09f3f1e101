/**
 * A SQLite fact (a .sqlite test: the file and the libSQL server): its planner takes the policy index for the
 * guard's filter even on a small table. PostgreSQL's planner rightly prefers a sequential scan there, so the same
 * question says nothing on it; indexes.test.ts checks the index exists on every engine.
 */
import { describe, expect, it } from "vitest";
import { blog } from "../../examples/blog/config.js";
import { startServer } from "../helpers/server.js";
import { testConfig } from "./helpers.js";

describe("policy indexes in SQLite's plans", () => {
  it("SQLite's planner uses the policy index for the blog's public filter", async () => {
    const server = await startServer(testConfig(blog.config));
    try {
      const plan = await server.rows("explain query plan select count(*) from posts where published = 1");
      expect(plan.map((r) => r.detail).join(" ")).toContain("policy_idx_posts_published");
    } finally {
      await server.close();
    }
  });
});
