/** `citadel explain` (4.15, 12.1): the decision, the matched policies and the SQL WHERE; errors exit non-zero. */
import { describe, expect, it } from "vitest";
import { BLOG, cli, tempDir } from "../cli/helpers.js";

const { db } = tempDir("citadel-explain-");
const explain = (...args: string[]) => cli(["explain", "--config", BLOG, "--db", db("blog.db"), ...args]);

describe("citadel explain (4.15, 12.1)", () => {
  it("prints a filter decision with its policy path and SQL (4.15)", async () => {
    const run = await explain("--role", "author", "--permission", "data.entity.update", "--entity", "posts");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("decision:   FILTER");
    expect(run.stdout).toContain("config.auth.roles.author.permissions[5].policies[0]");
    expect(run.stdout).toContain('"posts"."author_id" = ?');
    expect(run.stdout).toContain('["@user.id"]');
    expect(run.stdout).toContain("owner:      author_id is the caller's user id");
  });

  it("uses the default role without --role; a DENY is an answer, exit 0 (4.1, 12.1)", async () => {
    const run = await explain("--permission", "data.entity.create", "--entity", "posts", "--json");
    expect(run.code, run.stderr).toBe(0);
    const explanation = JSON.parse(run.stdout);
    expect(explanation).toMatchObject({ role: "anonymous", decision: "deny", permission: "data.entity.create" });
    expect(explanation.reason).toContain("anonymous");
  });

  it("a DENY for a configured role exits 0 (12.1)", async () => {
    const run = await explain("--role", "commenter", "--permission", "data.entity.delete", "--entity", "posts");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("decision:   DENY");
  });

  it.each([
    {
      name: "an unknown role names it and the configured roles",
      args: ["--role", "membr", "--permission", "data.entity.read", "--entity", "posts"],
      stderr: 'citadel: role: unknown role "membr" (configured roles: anonymous, commenter, author, moderator, admin)',
    },
    {
      name: "an unknown permission",
      args: ["--role", "author", "--permission", "data.entity.fly", "--entity", "posts"],
      stderr: "permission: expected one of",
    },
    {
      name: "an unknown entity",
      args: ["--role", "author", "--permission", "data.entity.read", "--entity", "postz"],
      stderr: 'entity: unknown entity "postz"',
    },
  ])("$name: exit 1, nothing on stdout (12.1)", async ({ args, stderr }) => {
    const run = await explain(...args);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: "" });
    expect(run.stderr).toContain(stderr);
  });

  it("--permission and --entity are required: exit 2 (12.1)", async () => {
    const run = await explain("--role", "author", "--entity", "posts");
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--permission <permission> is required");
  });
});
