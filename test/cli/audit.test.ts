/**
 * `citadel audit verify|prune|tail` in-process through `main(argv, io)` (7.3, 12.1). A real server with the audit
 * trail on shares the CLI's database: what it records over HTTP is what the CLI checks, prunes and prints.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants } from "../tenancy/fixture.js";
import { auditConfig } from "./audit-app.config.js";
import { cli, ROOT, tempDir } from "./helpers.js";

const AUDIT_APP = join(ROOT, "test/cli/audit-app.config.ts");
const FOREVER_APP = join(ROOT, "test/cli/audit-forever-app.config.ts");
const TENANCY_APP = join(ROOT, "test/cli/tenancy-app.config.ts");
const { dir, db } = tempDir("citadel-audit-cli-");
// the file the server below opens (startServer's `dir` + data.db)
const auditDb = db("data.db");
const audit = (...args: string[]) => cli(["audit", ...args, "--config", AUDIT_APP, "--db", auditDb]);

/** `#id at action target actor…`: the line `audit tail` prints for an entry. */
const LINE = /^#(\d+) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([a-z_]+\.[a-z_]+) (\S+) (.+)$/;

let server: TestServer;
let alice: Record<string, string>;
const count = async () => Number((await server.rows("select count(*) as n from citadel_audit"))[0]!.n);
const entry = async (id: number) => (await server.rows("select * from citadel_audit where id = ?", id))[0] as Row;
/** Run `sql` with the append-only triggers out of the way (the CLI's next start puts them back). */
const byHand = async (sql: string, ...params: unknown[]) => {
  await server.rows("drop trigger if exists citadel_audit_append_only_update");
  await server.rows("drop trigger if exists citadel_audit_append_only_delete");
  await server.rows(sql, ...params);
};

beforeAll(async () => {
  server = await startServer(auditConfig(), { dir, options: { seed: seedTenants } });
  alice = bearer(await login(server, "alice@a.test", PASSWORD));
  for (const title of ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]) {
    const created = await server.request("POST", "/api/data/notes", { title }, alice);
    expect(created.status, created.text).toBe(201);
  }
  const updated = await server.request("PATCH", "/api/data/notes/4", { title: "one, again" }, alice);
  expect(updated.status, updated.text).toBe(200);
});
afterAll(async () => {
  await server?.close();
});

describe("citadel audit verify (7.3, 12.1)", () => {
  it("checks every entry and says the chain holds", async () => {
    const run = await audit("verify");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`audit trail OK: ${await count()} entries checked\n`);
  });

  it("names the first entry altered by hand, exit 1; the chain holds again once it is put back", async () => {
    const id = 3;
    const original = (await entry(id)).reason;
    await byHand("update citadel_audit set reason = 'nothing to see' where id = ?", id);
    const run = await audit("verify");
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      `citadel: audit trail broken: entry #${id} was altered (${id - 1} entries before it check out)\n`,
    );
    const json = await audit("verify", "--json");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      entries: id - 1,
      broken: { id, problem: "was altered" },
    });
    await byHand("update citadel_audit set reason = ? where id = ?", original, id);
    expect((await audit("verify")).code).toBe(0);
  });

  it("the CLI's own start puts the append-only triggers back", async () => {
    await byHand("select 1");
    expect((await audit("verify")).code).toBe(0);
    await expect(server.rows("update citadel_audit set reason = 'x' where id = 1")).rejects.toThrow(/append-only/);
  });
});

describe("citadel audit tail (7.1, 12.1)", () => {
  it("prints the latest entries, oldest first, one per line: id, time, action, entity#row, actor, changes", async () => {
    const run = await audit("tail", "-n", "2");
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    const total = await count();
    expect(lines.map((l) => Number(LINE.exec(l)?.[1]))).toEqual([total - 1, total]);
    expect(lines[1]).toMatch(/^#\d+ \S+ data\.update notes#4 user=1 role=member account=1 ip=\S+ changed title$/);
    expect(lines[0]).toMatch(/ data\.create notes#13 user=1 role=member account=1 ip=\S+ changed /);
  });

  it("prints 20 entries by default, and an entry's reason quoted on its line", async () => {
    const failed = await server.request("POST", "/api/auth/password/login", { email: "bob@a.test", password: "no" });
    expect(failed.status).toBe(401);
    const run = await audit("tail");
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(20);
    for (const line of lines) expect(line).toMatch(LINE);
    expect(lines[19]).toMatch(/^#\d+ \S+ auth\.login_failed users ip=\S+ ".*\\"bob@a\.test\\""$/);
    // the seed wrote as trusted code: no actor at all
    const first = await audit("tail", "-n", String(await count()));
    expect(first.stdout.split("\n")[0]).toMatch(/^#1 \S+ data\.create accounts#1 no actor changed /);
  });

  it("--json prints each entry as one JSON object per line, chain fields included", async () => {
    const run = await audit("tail", "-n", "3", "--json");
    expect(run.code, run.stderr).toBe(0);
    const entries = run.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Row);
    expect(entries).toHaveLength(3);
    expect(entries[2]).toMatchObject({ id: await count(), action: "auth.login_failed", actor: { user_id: null } });
    expect(entries[2]!.prev_hash).toBe(entries[1]!.hash);
    expect(entries[2]!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("--follow keeps printing entries as they are written until stopped", async () => {
    const stop = new AbortController();
    let stdout = "";
    let stderr = "";
    const running = main(["audit", "tail", "-n", "1", "--follow", "--config", AUDIT_APP, "--db", auditDb], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      stdin: async () => undefined,
      prompt: async () => "",
      env: {},
      signal: stop.signal,
    });
    const until = async (done: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    // the latest entry first, then what is written while it follows
    await until(() => stdout.includes("\n"));
    const created = await server.request("POST", "/api/data/notes", { title: "followed" }, alice);
    expect(created.status, created.text).toBe(201);
    await until(() => stdout.includes(`notes#${created.body.data.id}`));
    stop.abort();
    expect(await running, stderr).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(new RegExp(`^#\\d+ \\S+ data\\.create notes#${created.body.data.id} user=1 `));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ auth\.login_failed /);
  });

  it.each([["0"], ["x"], ["-1"]])("-n %s is a usage error (exit 2)", async (n) => {
    const run = await audit("tail", "-n", n);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--lines expects a number of entries|option/);
  });
});

describe("citadel audit prune (7.3, 12.1)", () => {
  it("without retention_days removes nothing and says so", async () => {
    const before = await count();
    const run = await cli(["audit", "prune", "--config", FOREVER_APP, "--db", auditDb]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("nothing removed: config.audit.retention_days is not set, so entries are kept for good\n");
    expect(await count()).toBe(before);
  });

  it("removes the entries older than retention_days, records its own entry, and the chain still holds", async () => {
    // entries 1-5 written 40 days ago (by hand: their hashes no longer match, but they are the ones to go)
    const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
    await byHand("update citadel_audit set at = ? where id <= 5", old);
    const before = await count();
    const run = await audit("prune");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^removed 5 entries older than \d{4}-\S+Z \(retention_days 30\); recorded as an audit\.prune entry\n$/,
    );
    expect(await count()).toBe(before - 5 + 1);
    const verify = await audit("verify");
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toBe(
      `audit trail OK: ${before - 4} entries checked, from #6 (the entries before it were pruned)\n`,
    );
    const last = await audit("tail", "-n", "1");
    expect(last.stdout).toMatch(
      /^#\d+ \S+ audit\.prune citadel_audit#5 no actor changed hash "removed 5 entries older than \S+ \(through #5\)"\n$/,
    );
    // nothing older is left: a second prune removes none, and records that too
    const again = await audit("prune");
    expect(again.stdout).toMatch(/^removed 0 entries older than /);
    expect(await count()).toBe(before - 5 + 2);
  });
});

describe("citadel audit without the trail (12.1)", () => {
  const offDb = db("off.db");
  it.each([["verify"], ["prune"], ["tail"]])(
    "audit %s fails with exit 1 and says how to turn it on",
    async (command) => {
      const run = await cli(["audit", command, "--config", TENANCY_APP, "--db", offDb]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr).toBe("citadel: the audit trail is disabled: set config.audit.enabled to true\n");
    },
  );
});

describe("citadel audit --help (12.1)", () => {
  it("lists the three commands", async () => {
    const run = await cli(["audit", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: citadel audit <command> \[options\]/);
    for (const command of ["audit verify", "audit prune", "audit tail"]) expect(run.stdout).toContain(command);
  });

  it.each([
    ["verify", "Usage: citadel audit verify --config <file> [--db <url>] [--json]"],
    ["prune", "Usage: citadel audit prune --config <file> [--db <url>]"],
    ["tail", "Usage: citadel audit tail --config <file> [--db <url>] [--lines <N>] [--follow] [--json]"],
  ])("audit %s --help shows its usage", async (command, usage) => {
    const run = await cli(["audit", command, "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n")[0]).toBe(usage);
  });

  it("a command without --config is a usage error (exit 2)", async () => {
    const run = await cli(["audit", "verify"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--config <file> is required");
  });
});
