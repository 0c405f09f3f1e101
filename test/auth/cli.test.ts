/** The CLI (`citadel user create`, `citadel sync`), spawned under tsx as a user would run it (3.5, 1.4). */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApp, DestructiveSyncError } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blog } from "../../examples/blog/config.js";
import { startServer } from "../helpers/server.js";
import { FAST_ARGON2, login, SECRET } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "src/cli/index.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function withoutSecret(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CITADEL_JWT_SECRET: _, ...rest } = env;
  return rest;
}

function cli(args: string[], stdin: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      cwd: ROOT,
      // no JWT secret: the CLI must not need one
      env: { ...withoutSecret(process.env), ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe("citadel user create (3.5)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "citadel-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("creates a user from the blog example's config, reading the password from stdin; the user can log in", async () => {
    const env = { CITADEL_DB: `file:${join(dir, "data.db")}` };
    const run = await cli(
      ["user", "create", "--config", "examples/blog/config.ts", "--email", "Admin@Blog.example", "--role", "admin"],
      "a long admin password\n",
      env,
    );
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/created user #\d+ admin@blog\.example \(role admin\)/);
    expect(run.stdout + run.stderr).not.toContain("a long admin password");

    const server = await startServer(blog.config!, { dir });
    try {
      const res = await login(server, "admin@blog.example", "a long admin password");
      expect(res.body.user.role).toBe("admin");
    } finally {
      await server.close();
    }

    const again = await cli(
      ["user", "create", "--config", "examples/blog/config.ts", "--email", "admin@blog.example"],
      "another password\n",
      env,
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });

  it("loads a standalone TypeScript config and honours --db", async () => {
    const file = join(dir, "standalone.config.ts");
    writeFileSync(
      file,
      `const roles: Record<string, object> = { admin: { implicit_allow: true }, user: {} };
export default {
  connection: { url: "file:${join(dir, "ignored.db")}" },
  config: { auth: { enabled: true, jwt: { secret: "${SECRET}" }, roles, password: { argon2: ${JSON.stringify(FAST_ARGON2)} } } },
};\n`,
    );
    const db = `file:${join(dir, "standalone.db")}`;
    const run = await cli(
      ["user", "create", "--config", file, "--db", db, "--email", "u@example.com", "--role", "user"],
      "pw-12345678",
    );
    expect(run.code, run.stderr).toBe(0);
    const app = await createApp({
      connection: { url: db },
      config: { auth: { enabled: true, jwt: { secret: SECRET } } },
    });
    try {
      expect(await app.module.data.list("users")).toEqual([
        expect.objectContaining({ email: "u@example.com", role: "user" }),
      ]);
    } finally {
      await app.close();
    }
  });

  it("refuses a short password, an unknown role, an empty stdin and a missing --email, with exit code 1", async () => {
    const base = ["user", "create", "--config", "examples/blog/config.ts"];
    const env = { CITADEL_DB: `file:${join(dir, "refusals.db")}` };
    const short = await cli([...base, "--email", "s@example.com"], "short\n", env);
    expect([short.code, short.stderr]).toEqual([1, expect.stringMatching(/at least 8 characters/)]);
    const role = await cli([...base, "--email", "s@example.com", "--role", "root"], "long enough pw\n", env);
    expect([role.code, role.stderr]).toEqual([1, expect.stringMatching(/unknown role "root"/)]);
    const empty = await cli([...base, "--email", "s@example.com"], "", env);
    expect([empty.code, empty.stderr]).toEqual([1, expect.stringMatching(/no password on stdin/)]);
    const noEmail = await cli(base, "long enough pw\n", env);
    expect([noEmail.code, noEmail.stderr]).toEqual([
      1,
      expect.stringMatching(/--email <email> is required[\s\S]*Usage/),
    ]);
    const unknown = await cli(["frobnicate"], "", env);
    expect(unknown.code).toBe(1);
  });
});

describe("citadel sync (1.4)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "citadel-sync-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("applies a destructive change only with --destructive, then the app starts", async () => {
    const url = `file:${join(dir, "data.db")}`;
    const posts = (fields: string) => `{ data: { entities: { posts: { fields: { ${fields} } } } } }`;
    const wide = join(dir, "wide.mjs");
    const narrow = join(dir, "narrow.mjs");
    writeFileSync(
      wide,
      `export default { connection: { url: "${url}" }, config: ${posts(`title: { type: "text" }, extra: { type: "text" }`)} };\n`,
    );
    writeFileSync(
      narrow,
      `export const app = { connection: { url: "${url}" }, config: ${posts(`title: { type: "text" }`)} };\n`,
    );

    expect((await cli(["sync", "--config", wide], "")).code).toBe(0);
    const narrowInput = (await import(narrow)).app;
    await expect(createApp(narrowInput)).rejects.toBeInstanceOf(DestructiveSyncError);

    const refused = await cli(["sync", "--config", narrow], "");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/drop column "extra"/);

    const applied = await cli(["sync", "--config", narrow, "--destructive"], "");
    expect(applied.code, applied.stderr).toBe(0);
    const app = await createApp(narrowInput);
    await app.close();
  });
});
