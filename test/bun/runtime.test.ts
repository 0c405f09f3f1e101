/**
 * citadel/adapter/bun in Bun (§11.1, §11.3): bun:sqlite is the SQLite driver actually used, libsql when asked,
 * better-sqlite3 a one-line startup error, and startup errors are one line without a stack, as on Node (§1.6).
 */
import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { emailOf, PASSWORD } from "./apps.js";
import { type BunServer, loginAs, runBun, startBunServer } from "./bun-server.js";

const servers: BunServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(app: string, opts: { driver?: string } = {}) {
  const server = await startBunServer(app, opts);
  servers.push(server);
  return server;
}

/** The native modules (`.node` files) the process has loaded, by path. */
const nativeModules = (pid: number) => [
  ...new Set(
    readFileSync(`/proc/${pid}/maps`, "utf8")
      .split("\n")
      .map((line) => line.split(/\s+/)[5] ?? "")
      .filter((path) => path.endsWith(".node")),
  ),
];

/** A write over HTTP, so the database has been opened and written by the server's driver. */
async function createPost(server: BunServer, title: string) {
  const token = await loginAs(server, emailOf("user"), PASSWORD);
  const res = await server.as(token, "POST", "/api/data/posts", { title });
  expect(res.status, res.text).toBe(201);
}

describe("the Bun adapter's drivers (11.1, 11.3)", () => {
  it("a file: URL opens with bun:sqlite: the Bun process loads neither better-sqlite3 nor libsql, the file is in WAL mode and holds the rows (11.1)", async () => {
    const server = await start("step1");
    await createPost(server, "written by Bun");
    const loaded = nativeModules(server.pid);
    // argon2 hashed the login: the check can see native modules at all
    expect(loaded.some((path) => path.includes("argon2"))).toBe(true);
    expect(loaded.filter((path) => /better_sqlite3|@libsql/.test(path))).toEqual([]);
    const db = new Database(server.dbFile, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.prepare("SELECT title FROM posts WHERE title = ?").all("written by Bun")).toHaveLength(1);
    } finally {
      db.close();
    }
  });

  it('driver: "libsql" on a file opens it with libsql instead (the same check sees its native module) (11.1)', async () => {
    const server = await start("step1", { driver: "libsql" });
    await createPost(server, "written by libsql");
    const loaded = nativeModules(server.pid);
    expect(loaded.some((path) => path.includes("@libsql"))).toBe(true);
    expect(loaded.some((path) => path.includes("better_sqlite3"))).toBe(false);
  });

  it('driver: "better-sqlite3" on Bun is a one-line startup error naming what to use, exit code 1 (1.6, 11.3)', () => {
    const run = runBun(["step1", "file:data-never-created.db", "better-sqlite3"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'citadel: cannot start: connection.driver: "better-sqlite3" does not run on Bun; leave driver out to use bun:sqlite, or set it to "libsql"\n',
    );
  });

  it("a file in a missing directory is a one-line startup error naming the directory, without a stack (1.6)", () => {
    const run = runBun(["step1", "file:/no/such/dir/data.db"]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'citadel: cannot start: connection.url: the directory /no/such/dir of "file:/no/such/dir/data.db" does not exist\n',
    );
  });

  it("an unsupported scheme is a one-line startup error naming the schemes (11.1)", () => {
    const run = runBun(["step1", "mysql://localhost/app"]);
    expect(run.status).toBe(1);
    expect(run.stderr.split("\n")).toEqual([expect.stringMatching(/^citadel: cannot start: .*"mysql:".*postgres/), ""]);
  });
});
