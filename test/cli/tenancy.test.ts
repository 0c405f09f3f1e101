/**
 * The CLI's account options (6, 12.1) in-process through `main(argv, io)`: `key create --tenant`,
 * `user create --account` and `explain --tenant`. A real server shares the CLI's database (two accounts: A is
 * 1, B is 2, seeded by test/tenancy/fixture.ts), so a key or user the CLI makes is tried over HTTP.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apikey } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { seedTenants, tenancyConfig } from "../tenancy/fixture.js";
import { AUTH_APP, BLOG, cli, ROOT, tempDir } from "./helpers.js";

const TENANCY_APP = join(ROOT, "test/cli/tenancy-app.config.ts");
const KEYS_APP = join(ROOT, "test/cli/keys-app.config.ts");
const { dir, db } = tempDir("citadel-tenancy-cli-");
// the file the server below opens (startServer's `dir` + data.db)
const tenancyDb = db("data.db");
const run = (words: string[], args: string[], stdin?: string) =>
  cli([...words, "--config", TENANCY_APP, "--db", tenancyDb, ...args], { stdin });

/** The key a create printed: its own line. */
const printed = (stdout: string) => /^((?:pk|sk)_live_[0-9A-Za-z]{55})$/m.exec(stdout)?.[1];
const titles = (res: { body: { data: { title: string }[] } }) => res.body.data.map((n) => n.title);

let server: TestServer;
beforeAll(async () => {
  server = await startServer(tenancyConfig(), { dir, options: { seed: seedTenants } });
});
afterAll(async () => {
  await server?.close();
});

describe("citadel key create --tenant (5.2, 6.1, 12.1)", () => {
  it("binds the key to the account: it lists that account's rows only", async () => {
    const created = await run(
      ["key", "create"],
      ["--name", "b web", "--kind", "publishable", "--role", "reader", "--tenant", "2"],
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created publishable key #\d+ "b web" \(role reader, account 2\)\n/);
    const res = await server.request("GET", "/api/data/notes", undefined, apikey(printed(created.stdout)!));
    expect(res.status, res.text).toBe(200);
    expect(titles(res)).toEqual(["carol's note"]);

    // the same key without --tenant belongs to no account and sees no scoped rows (6.2)
    const unbound = await run(["key", "create"], ["--name", "no account", "--kind", "publishable", "--role", "reader"]);
    expect(unbound.stdout).toMatch(/\(role reader\)\n/);
    const none = await server.request("GET", "/api/data/notes", undefined, apikey(printed(unbound.stdout)!));
    expect(titles(none)).toEqual([]);
  });

  it("key list shows each key's tenant", async () => {
    const text = await run(["key", "list"], []);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^id +prefix +kind +role +tenant +name +state +expires_at\n/);
    expect(text.stdout).toMatch(/\n\d+ +pk_live_\w+ +publishable +reader +2 +b web +active +-\n/);
    const keys = JSON.parse((await run(["key", "list"], ["--json"])).stdout) as { name: string; tenant: unknown }[];
    expect(keys.find((k) => k.name === "b web")?.tenant).toBe(2);
    expect(keys.find((k) => k.name === "no account")?.tenant).toBeNull();
  });

  it.each([
    [["--tenant", "abc"], 2, '--tenant expects an account id (a positive whole number), not "abc"'],
    [["--tenant", "0"], 2, "--tenant expects an account id"],
    [["--tenant", "1.5"], 2, "--tenant expects an account id"],
    [["--tenant", "99"], 1, "tenant: no account has the id 99"],
  ])("key create %j: exit %i, nothing created", async (args, code, message) => {
    const before = JSON.parse((await run(["key", "list"], ["--json"])).stdout) as unknown[];
    const failed = await run(["key", "create"], ["--name", "x", "--kind", "secret", ...(args as string[])]);
    expect(failed.code, failed.stderr).toBe(code);
    expect(failed.stderr).toContain(message);
    expect(JSON.parse((await run(["key", "list"], ["--json"])).stdout)).toHaveLength(before.length);
  });

  it("an app without tenant isolation refuses --tenant", async () => {
    const failed = await cli(
      ["key", "create", "--config", KEYS_APP, "--db", db("keys.db"), "--name", "x"].concat([
        "--kind",
        "secret",
        "--tenant",
        "1",
      ]),
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("tenant: tenant isolation is not enabled (config.tenancy)");
  });
});

describe("citadel user create --account (6.4, 12.1)", () => {
  const PASSWORD = "a long member password";

  it("puts the user in the account: they list its rows only", async () => {
    const created = await run(
      ["user", "create"],
      ["--email", "dan@b.test", "--role", "member", "--account", "2"],
      PASSWORD,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created user #\d+ dan@b\.test \(role member, account 2\)\n$/);
    expect(await server.rows("select account_id from users where email = 'dan@b.test'")).toEqual([{ account_id: 2 }]);
    const res = await server.request(
      "GET",
      "/api/data/notes",
      undefined,
      bearer(await login(server, "dan@b.test", PASSWORD)),
    );
    expect(res.status, res.text).toBe(200);
    expect(titles(res)).toEqual(["carol's note"]);
  });

  it("without --account the user belongs to no account and sees no scoped rows (6.2)", async () => {
    const created = await run(["user", "create"], ["--email", "eve@nowhere.test", "--role", "member"], PASSWORD);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/\(role member\)\n$/);
    const res = await server.request(
      "GET",
      "/api/data/notes",
      undefined,
      bearer(await login(server, "eve@nowhere.test", PASSWORD)),
    );
    expect(titles(res)).toEqual([]);
  });

  it.each([
    [["--account", "b"], 2, '--account expects an account id (a positive whole number), not "b"'],
    [["--account", "1e3"], 2, "--account expects an account id"],
    [["--account", "99"], 1, '--account: no account has the id 99 (entity "accounts")'],
  ])("user create %j: exit %i, no user", async (args, code, message) => {
    const failed = await run(["user", "create"], ["--email", "nobody@b.test", ...(args as string[])], PASSWORD);
    expect(failed.code, failed.stderr).toBe(code);
    expect(failed.stderr).toContain(message);
    expect(await server.rows("select id from users where email = 'nobody@b.test'")).toEqual([]);
  });

  it("an app without tenant isolation refuses --account", async () => {
    const argv = [
      "user",
      "create",
      "--config",
      AUTH_APP,
      "--db",
      db("auth.db"),
      "--email",
      "x@y.test",
      "--account",
      "1",
    ];
    const failed = await cli(argv, { stdin: PASSWORD });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("--account: tenant isolation is not enabled (config.tenancy.enabled)");
  });
});

describe("citadel explain --tenant (6.1, 12.1)", () => {
  const READ = ["--role", "member", "--permission", "data.entity.read", "--entity", "notes"];

  it("without --tenant the SQL holds the caller's account as @tenant", async () => {
    const explained = await run(["explain"], READ);
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toContain('sql where:  "notes"."account_id" = ?');
    expect(explained.stdout).toContain('parameters: ["@tenant"]');
    expect(explained.stdout).toContain("tenant:     account_id = @tenant");
  });

  it("with --tenant the SQL holds that account", async () => {
    const explained = await run(["explain"], [...READ, "--tenant", "1"]);
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toContain("parameters: [1]");
    expect(explained.stdout).toContain("tenant:     account_id = 1");
    const json = JSON.parse((await run(["explain"], [...READ, "--tenant", "2", "--json"])).stdout);
    expect(json).toMatchObject({ parameters: [2], tenant: { field: "account_id", scope: 2 } });
  });

  it.each([
    [["--tenant", "one"], 2, '--tenant expects an account id (a positive whole number), not "one"'],
    [["--tenant", "99"], 1, '--tenant: no account has the id 99 (entity "accounts")'],
  ])("explain %j: exit %i", async (args, code, message) => {
    const failed = await run(["explain"], [...READ, ...(args as string[])]);
    expect(failed.code, failed.stderr).toBe(code);
    expect(failed.stderr).toContain(message);
    expect(failed.stdout).toBe("");
  });

  it("an app without tenant isolation refuses --tenant", async () => {
    const argv = ["explain", "--config", BLOG, "--db", db("blog.db"), "--permission", "data.entity.read"];
    const failed = await cli([...argv, "--entity", "posts", "--tenant", "1"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("--tenant: tenant isolation is not enabled (config.tenancy.enabled)");
  });
});
