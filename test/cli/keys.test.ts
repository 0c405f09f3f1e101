/**
 * `citadel key create|list|rotate|revoke` in-process through `main(argv, io)` (5.5, 12.1). A real server shares
 * the CLI's database, so what the CLI does is seen on the next HTTP request.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apikey, expectInvalidKey, keysConfig } from "../auth/api-keys-fixture.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { AUTH_APP, cli, ROOT, tempDir } from "./helpers.js";

const KEYS_APP = join(ROOT, "test/cli/keys-app.config.ts");
const { dir, db } = tempDir("citadel-keys-cli-");
// the file the server below opens (startServer's `dir` + data.db)
const keysDb = db("data.db");
const key = (...args: string[]) => ["key", ...args, "--config", KEYS_APP, "--db", keysDb];

/** The key a create or rotate printed: its own line. */
const printed = (stdout: string) => /^((?:pk|sk)_live_[0-9A-Za-z]{55})$/m.exec(stdout)?.[1];

describe("citadel key (5.5, 12.1)", () => {
  let server: TestServer;
  let first: string;
  beforeAll(async () => {
    const run = await cli(key("create", "--name", "backend", "--kind", "secret"));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^created secret key #1 "backend" \(no role of its own\)\n/);
    expect(run.stdout).toContain("it is not shown again");
    first = printed(run.stdout)!;
    expect(first).toMatch(/^sk_live_/);
    server = await startServer(keysConfig(), { dir });
  });
  afterAll(async () => {
    await server?.close();
  });

  const status = async (k: string) => (await server.request("GET", "/api/data/posts", undefined, apikey(k))).status;

  it("create prints the key once; the server accepts it (5.5)", async () => {
    expect(await status(first)).toBe(200);
  });

  it("create with a role, origins and an expiry (5.2)", async () => {
    const run = await cli(
      key(
        "create",
        "--name",
        "web",
        "--kind",
        "publishable",
        "--role",
        "reader",
        "--origins",
        "https://a.example, https://b.example",
        "--expires",
        "2999-01-01T00:00:00Z",
      ),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^created publishable key #2 "web" \(role reader\)\n/);
    const web = printed(run.stdout)!;
    expect(
      (await server.request("GET", "/api/data/posts", undefined, { ...apikey(web), origin: "https://b.example" }))
        .status,
    ).toBe(200);
    expectInvalidKey(
      await server.request("GET", "/api/data/posts", undefined, { ...apikey(web), origin: "https://c.example" }),
    );
  });

  it.each([
    [["create", "--name", "x", "--kind", "public"], 1, 'kind: must be "publishable" or "secret"'],
    [["create", "--name", "x", "--kind", "secret", "--role", "root"], 1, 'unknown role "root"'],
    [["create", "--name", "x", "--kind", "secret", "--origins", "https://a.example"], 1, "only publishable keys"],
    // a refusal names the option the user typed, not the key's field
    [["create", "--name", "x", "--kind", "secret", "--expires", "tomorrow"], 1, "citadel: --expires: expected a date"],
    [["create", "--name", "x", "--kind", "publishable", "--origins", "nope"], 1, "citadel: --origins: item 0"],
    [["create", "--name", "x", "--kind", "secret", "--ips", "1.2.3"], 1, "citadel: --ips: item 0"],
    [["create", "--kind", "secret"], 2, "--name <name> is required"],
    [["rotate", "--id", "abc"], 2, "--id expects a key id"],
    [["rotate", "--id", "99"], 1, "no API key has the id 99"],
    [["revoke", "--id", "99"], 1, "no API key has the id 99"],
  ])("key %j: exit %i (12.1)", async (args, code, message) => {
    const run = await cli(key(...(args as string[])));
    expect(run.code, run.stderr).toBe(code);
    expect(run.stderr).toContain(message);
  });

  it("list shows prefixes and states, never a key or a hash (5.5)", async () => {
    const text = await cli(key("list"));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^id +prefix +kind +role +tenant +name +state +expires_at\n1 +sk_live_[0-9A-Za-z]{12} +secret +- +- +backend +active +-\n/,
    );
    expect(text.stdout).not.toContain(first);
    const json = await cli(key("list", "--json"));
    const keys = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(keys.map((k) => k.name)).toEqual(["backend", "web"]);
    expect(json.stdout).not.toContain(first);
    expect(json.stdout).not.toContain('"hash"');
  });

  it("rotate prints a new key; with --grace 0 the old one is 401 on the next request (5.5)", async () => {
    const run = await cli(key("rotate", "--id", "1", "--grace", "0"));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^rotated key #1 \(it works 0 more seconds\); new secret key #3 "backend"/);
    const renewed = printed(run.stdout)!;
    expect(renewed).not.toBe(first);
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(first)));
    expect(await status(renewed)).toBe(200);
    expect((await cli(key("list"))).stdout).toMatch(/\n1 .* replaced by 3 /);

    const revoked = await cli(key("revoke", "--id", "3"));
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^revoked secret key #3 "backend" \(sk_live_[0-9A-Za-z]{12}…\)\n$/);
    expectInvalidKey(await server.request("GET", "/api/data/posts", undefined, apikey(renewed)));
  });

  it("an app with API keys off says how to turn them on (5)", async () => {
    const run = await cli(["key", "list", "--config", AUTH_APP, "--db", db("off.db")]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("API keys are disabled: set config.auth.api_keys.enabled to true");
  });
});
