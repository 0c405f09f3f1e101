/**
 * `citadel user ...` in-process through `main(argv, io)` (3.5, 4.11, 12.1). Revocation is shown over HTTP: a real
 * server and the CLI share one database, and a token issued before a change answers 401 after it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blog } from "../../examples/blog/config.js";
import { AUTH_APP, BLOG, cli, tempDir } from "../cli/helpers.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { authConfig, FAST_ARGON2, PASSWORD, SECRET } from "./helpers.js";

const { dir, db } = tempDir("citadel-cli-");

const me = (server: TestServer, token: string) => server.request("GET", "/api/auth/me", undefined, bearer(token));

describe("citadel user create (3.5, 12.1)", () => {
  // the file the blog server below opens (startServer's `dir` + data.db)
  const blogDb = db("data.db");
  const create = (...args: string[]) => ["user", "create", "--config", BLOG, "--db", blogDb, ...args];

  it.each([
    {
      name: "with --role: that role; the password is never printed",
      argv: create("--email", "Admin@Blog.example", "--role", "admin"),
      stdin: "a long admin password\n",
      code: 0,
      out: /^created user #1 admin@blog\.example \(role admin\)\n$/,
    },
    {
      name: "without --role: config.auth.default_role_register, and says so",
      argv: create("--email", "reader@blog.example"),
      stdin: "a long reader password",
      code: 0,
      out: /^created user #2 reader@blog\.example \(role commenter, from config\.auth\.default_role_register\)\n$/,
    },
    {
      name: "a taken email (whatever its case)",
      argv: create("--email", "ADMIN@blog.example"),
      stdin: "another password\n",
      code: 1,
      err: "citadel: a user with this email already exists",
    },
    {
      name: "a password under the minimum length (3.1)",
      argv: create("--email", "s@blog.example"),
      stdin: "short\n",
      code: 1,
      err: "password: must be at least 8 characters",
    },
    {
      name: "an unknown role names the configured ones",
      argv: create("--email", "s@blog.example", "--role", "root"),
      stdin: "long enough pw\n",
      code: 1,
      err: 'role: unknown role "root" (configured roles: anonymous, commenter, author, moderator, admin)',
    },
    {
      name: "an empty stdin",
      argv: create("--email", "s@blog.example"),
      stdin: "",
      code: 1,
      err: "no password on stdin",
    },
  ])("$name: exit $code (3.5, 12.1)", async ({ argv, stdin, code, out, err }) => {
    const run = await cli(argv, { stdin });
    expect(run.code, run.stderr).toBe(code);
    if (out) expect(run.stdout).toMatch(out);
    if (err) expect(run.stderr).toContain(err);
    expect(run.stdout + run.stderr).not.toContain(stdin.trim() || "\u0000");
  });

  it("on a terminal, prompts twice; two different answers are an error (12.1)", async () => {
    const typed = await cli(create("--email", "typed@blog.example"), { prompts: ["typed password", "typed password"] });
    expect(typed.code, typed.stderr).toBe(0);
    const mismatch = await cli(create("--email", "typo@blog.example"), {
      prompts: ["typed password", "typed passwrd"],
    });
    expect([mismatch.code, mismatch.stderr]).toEqual([
      1,
      expect.stringContaining("citadel: the passwords do not match"),
    ]);
  });

  it("the created users can log in over HTTP with their role (3.5)", async () => {
    const server = await startServer(blog.config!, { dir });
    try {
      const admin = await server.request("POST", "/api/auth/password/login", {
        email: "admin@blog.example",
        password: "a long admin password",
      });
      expect([admin.status, admin.body?.user?.role]).toEqual([200, "admin"]);
      const token = await login(server, "reader@blog.example", "a long reader password");
      expect((await me(server, token)).body.user.role).toBe("commenter");
    } finally {
      await server.close();
    }
  });

  it("loads a standalone TypeScript config and honours --db (3.5)", async () => {
    const file = join(dir, "standalone.config.ts");
    writeFileSync(
      file,
      `const roles: Record<string, object> = { admin: { implicit_allow: true }, user: {} };
export default {
  connection: { url: "file:${join(dir, "ignored.db")}" },
  config: { auth: { enabled: true, jwt: { secret: "${SECRET}" }, roles, password: { argon2: ${JSON.stringify(FAST_ARGON2)} } } },
};\n`,
    );
    const url = db("standalone.db");
    const run = await cli(
      ["user", "create", "--config", file, "--db", url, "--email", "u@example.com", "--role", "user"],
      {
        stdin: "pw-12345678",
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const app = await createApp({ connection: { url }, config: { auth: { enabled: true, jwt: { secret: SECRET } } } });
    try {
      expect(await app.module.data.list("users")).toEqual([
        expect.objectContaining({ email: "u@example.com", role: "user" }),
      ]);
    } finally {
      await app.close();
    }
  });

  it("a config without auth: every user command fails and says why (12.1)", async () => {
    const file = join(dir, "no-auth.mjs");
    writeFileSync(file, "export default { config: {} };\n");
    const base = ["--config", file, "--db", db("no-auth.db"), "--email", "x@example.com"];
    for (const argv of [
      ["user", "create", ...base],
      ["user", "set-role", ...base, "--role", "admin"],
      ["user", "set-password", ...base],
      ["user", "delete", ...base],
    ]) {
      const run = await cli(argv, { stdin: PASSWORD });
      expect([run.code, run.stderr], argv.join(" ")).toEqual([1, expect.stringContaining("auth is disabled")]);
    }
  });
});

describe("citadel user list (12.1)", () => {
  const url = db("list.db");
  const run = (...args: string[]) => cli(["user", "list", "--config", AUTH_APP, "--db", url, ...args]);

  it("prints 'no users' on an empty database", async () => {
    const empty = await run();
    expect({ code: empty.code, stdout: empty.stdout }, empty.stderr).toEqual({ code: 0, stdout: "no users\n" });
  });

  it("prints id, email, role and created_at; --json prints the users as the API shows them, never a hash (3.1)", async () => {
    for (const [email, role] of [
      ["ann@example.com", "admin"],
      ["bob@example.com", undefined],
    ] as const) {
      const created = await cli(
        ["user", "create", "--config", AUTH_APP, "--db", url, "--email", email, ...(role ? ["--role", role] : [])],
        { stdin: PASSWORD },
      );
      expect(created.code, created.stderr).toBe(0);
    }
    const table = await run();
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^id\s+email\s+role\s+created_at$/);
    expect(lines[1]).toMatch(/^1\s+ann@example\.com\s+admin\s+\d{4}-\d\d-\d\dT/);
    expect(lines[2]).toMatch(/^2\s+bob@example\.com\s+user\s+\d{4}-\d\d-\d\dT/);
    expect(lines).toHaveLength(3);

    const json = await run("--json");
    expect(json.code, json.stderr).toBe(0);
    const users = JSON.parse(json.stdout);
    expect(users).toEqual([
      expect.objectContaining({ id: 1, email: "ann@example.com", role: "admin", created_at: expect.any(String) }),
      expect.objectContaining({ id: 2, email: "bob@example.com", role: "user", created_at: expect.any(String) }),
    ]);
    for (const output of [table.stdout, json.stdout])
      for (const secret of ["password_hash", "$argon2", "token_version", "secret_note", PASSWORD])
        expect(output).not.toContain(secret);
  });
});

describe("citadel user set-role | set-password | delete: older tokens answer 401 (4.11, 12.1)", () => {
  let server: TestServer;
  let url: string;
  const user = (command: string, ...args: string[]) => ["user", command, "--config", AUTH_APP, "--db", url, ...args];

  /** Create a user through the CLI and log in over HTTP; the token works. */
  async function signedIn(email: string): Promise<string> {
    const created = await cli(user("create", "--email", email), { stdin: PASSWORD });
    expect(created.code, created.stderr).toBe(0);
    const token = await login(server, email, PASSWORD);
    expect((await me(server, token)).status).toBe(200);
    return token;
  }

  beforeAll(async () => {
    server = await startServer(authConfig());
    url = server.connection.url;
  });
  afterAll(() => server.close());

  it("set-role: the old token is 401, a new login carries the new role; the same role changes nothing (4.11)", async () => {
    const token = await signedIn("role@example.com");
    const run = await cli(user("set-role", "--email", "role@example.com", "--role", "editor"));
    expect({ code: run.code, stdout: run.stdout }, run.stderr).toEqual({
      code: 0,
      stdout: "user #1 role@example.com: role user -> editor; their older tokens are revoked\n",
    });
    expect((await me(server, token)).status).toBe(401);
    const fresh = await login(server, "role@example.com", PASSWORD);
    expect((await me(server, fresh)).body.user.role).toBe("editor");

    const same = await cli(user("set-role", "--email", "role@example.com", "--role", "editor"));
    expect([same.code, same.stdout]).toEqual([
      0,
      "user #1 role@example.com already has role editor (nothing changed)\n",
    ]);
    expect((await me(server, fresh)).status).toBe(200);
  });

  it("set-role: an unknown role or email is exit 1 and changes nothing (12.1)", async () => {
    const token = await login(server, "role@example.com", PASSWORD);
    const role = await cli(user("set-role", "--email", "role@example.com", "--role", "root"));
    expect([role.code, role.stderr]).toEqual([
      1,
      expect.stringContaining('unknown role "root" (configured roles: user, editor, admin)'),
    ]);
    const email = await cli(user("set-role", "--email", "Nobody@Example.com", "--role", "admin"));
    expect([email.code, email.stderr]).toEqual([
      1,
      expect.stringContaining('citadel: no user has the email "nobody@example.com"'),
    ]);
    expect((await me(server, token)).status).toBe(200);
  });

  it("set-password: a short password changes nothing; a good one makes the old token and password fail (3.1, 4.11)", async () => {
    const token = await signedIn("pw@example.com");
    const short = await cli(user("set-password", "--email", "pw@example.com"), { stdin: "short\n" });
    expect([short.code, short.stderr]).toEqual([1, expect.stringContaining("password: must be at least 8 characters")]);
    expect((await me(server, token)).status).toBe(200);

    const run = await cli(user("set-password", "--email", "pw@example.com"), { stdin: "a brand new password\n" });
    expect({ code: run.code, stdout: run.stdout }, run.stderr).toEqual({
      code: 0,
      stdout: "password of user #2 pw@example.com changed; their older tokens are revoked\n",
    });
    expect(run.stdout).not.toContain("a brand new password");
    expect((await me(server, token)).status).toBe(401);
    const old = await server.request("POST", "/api/auth/password/login", {
      email: "pw@example.com",
      password: PASSWORD,
    });
    expect(old.status).toBe(401);
    await login(server, "pw@example.com", "a brand new password");

    const unknown = await cli(user("set-password", "--email", "nobody@example.com"), { stdin: "long enough pw" });
    expect([unknown.code, unknown.stderr]).toEqual([
      1,
      expect.stringContaining('citadel: no user has the email "nobody@example.com"'),
    ]);
  });

  it("delete: the user's token is 401 and stays 401 when the email is registered again (4.11)", async () => {
    const token = await signedIn("gone@example.com");
    const run = await cli(user("delete", "--email", "gone@example.com"));
    expect({ code: run.code, stdout: run.stdout }, run.stderr).toEqual({
      code: 0,
      stdout: "deleted user #3 gone@example.com; their tokens no longer work\n",
    });
    expect((await me(server, token)).status).toBe(401);
    const login401 = await server.request("POST", "/api/auth/password/login", {
      email: "gone@example.com",
      password: PASSWORD,
    });
    expect(login401.status).toBe(401);

    const again = await cli(user("delete", "--email", "gone@example.com"));
    expect([again.code, again.stderr]).toEqual([
      1,
      expect.stringContaining('citadel: no user has the email "gone@example.com"'),
    ]);

    // a new user never gets the deleted user's id, so the old token cannot come back to life
    const back = await cli(user("create", "--email", "gone@example.com"), { stdin: PASSWORD });
    expect(back.stdout).toMatch(/^created user #4 /);
    expect((await me(server, token)).status).toBe(401);
  });
});
