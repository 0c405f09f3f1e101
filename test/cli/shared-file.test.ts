/**
 * The CLI beside another process writing the same SQLite file (a running server, §11.4, §12.1): each command
 * waits its turn for the write lock instead of failing with "database is locked". Every transaction begins
 * IMMEDIATE; a DEFERRED one whose first read came before the other process's last commit could not wait.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOG, cli, ROOT, tempDir } from "./helpers.js";

const { dir } = tempDir("citadel-cli-shared-");
const file = join(dir, "shared.db");

/** Another process committing a row to the file every millisecond or so, until killed. */
const WRITER = `
  const Database = require("better-sqlite3");
  const db = new Database(process.argv[1], { timeout: 5000 });
  db.pragma("journal_mode = WAL");
  db.exec("create table if not exists noise (at integer)");
  const insert = db.prepare("insert into noise (at) values (?)");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  process.stdout.write("ready\\n");
  for (;;) { insert.run(Date.now()); Atomics.wait(pause, 0, 0, 1); }
`;

describe("the CLI beside another writer of its SQLite file (11.4, 12.1)", () => {
  let writer: ChildProcess;

  beforeAll(async () => {
    // the app's tables first, so that each command below opens an existing database
    expect((await cli(["sync", "--config", BLOG, "--db", `file:${file}`])).code).toBe(0);
    writer = spawn(process.execPath, ["-e", WRITER, file], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      writer.once("error", reject);
      writer.stdout!.once("data", () => resolve());
    });
  });
  afterAll(() => {
    writer?.kill("SIGKILL");
  });

  it("commands that write at startup and after all succeed while it writes", async () => {
    for (let i = 0; i < 6; i++) {
      const email = `shared${i}@example.com`;
      const created = await cli(["user", "create", "--config", BLOG, "--db", `file:${file}`, "--email", email], {
        stdin: "a long shared password\n",
      });
      expect(created.code, created.stderr).toBe(0);
      const listed = await cli(["user", "list", "--config", BLOG, "--db", `file:${file}`]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain(email);
    }
  });
});
