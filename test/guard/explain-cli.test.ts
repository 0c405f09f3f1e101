/** Issue 4 item 8: `citadel explain` prints the decision, the matched policies and the SQL WHERE. */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "citadel-explain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const explain = (...args: string[]) =>
  promisify(execFile)(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "src/cli/index.ts"),
      "explain",
      "--config",
      "examples/blog/config.ts",
      "--db",
      `file:${join(dir, "blog.db")}`,
      ...args,
    ],
    { cwd: ROOT },
  );

describe("citadel explain (issue 4 item 8)", () => {
  it("prints a filter decision with its policy path and SQL", async () => {
    const { stdout } = await explain("--role", "author", "--permission", "data.entity.update", "--entity", "posts");
    expect(stdout).toContain("decision:   FILTER");
    expect(stdout).toContain("config.auth.roles.author.permissions[2].policies[0]");
    expect(stdout).toContain('"posts"."author_id" = ?');
    expect(stdout).toContain('["@user.id"]');
  });

  it("uses the default role without --role and explains denials", async () => {
    const { stdout } = await explain("--permission", "data.entity.create", "--entity", "posts", "--json");
    const explanation = JSON.parse(stdout);
    expect(explanation).toMatchObject({ role: "anonymous", decision: "deny", permission: "data.entity.create" });
    expect(explanation.reason).toContain("anonymous");
  });

  it("fails with a clear message for an unknown permission", async () => {
    await expect(explain("--permission", "data.entity.fly", "--entity", "posts")).rejects.toMatchObject({
      stderr: expect.stringContaining("permission: expected one of"),
    });
  });
});
