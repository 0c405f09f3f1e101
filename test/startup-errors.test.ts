/** A failed start says what is wrong once, names the config path, and exits 1 (1.5, 1.6). */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApp, em, entity, text } from "citadel";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, freePort, type Postgres, startPostgres, withDatabase } from "./helpers/engines.js";
import { DRIVERS } from "./helpers/server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ADAPTER = join(ROOT, "adapters/node/index.ts");
const dir = mkdtempSync(join(tmpdir(), "citadel-startup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = { data: em({ notes: entity("notes", { body: text() }) }).toJSON() };

/** Run an ESM script under tsx, as a user's server file would run, to its end. */
function runScript(name: string, body: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(dir, name);
  writeFileSync(file, `import { serve } from ${JSON.stringify(ADAPTER)};\n${body}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const occurrences = (haystack: string, needle: string) => haystack.split(needle).length - 1;

describe("a failed start, as a process (1.6)", () => {
  it("`await serve(…).ready` at the top of a script prints the error once, without a stack, and exits 1", async () => {
    const run = await runScript(
      "top-level.mjs",
      `await serve({ connection: { url: "mysql://app:s3cret@db.example.com/app" }, config: { data: { entities: {} } } }).ready;
console.log("not reached");`,
    );
    const message =
      'citadel: cannot start: connection.url: the scheme "mysql:" of "mysql://app:***@db.example.com/app" is not supported';
    expect(occurrences(run.stderr, message), run.stderr).toBe(1);
    expect(run.stderr).not.toContain("    at ");
    expect(run.stderr).not.toContain("s3cret");
    expect(run.stdout).not.toContain("not reached");
    expect(run.code).toBe(1);
  });

  it("a caller that catches `ready` gets the error; it is printed once all the same", async () => {
    const missing = join(dir, "no-such-dir", "data.db");
    const run = await runScript(
      "caught.mjs",
      `try {
  await serve({ connection: { url: ${JSON.stringify(`file:${missing}`)} }, config: { data: { entities: {} } } }).ready;
} catch (error) {
  console.log("caught: " + error.name + ": " + error.message);
}`,
    );
    const problem = `connection.url: the directory ${join(dir, "no-such-dir")} of "file:${missing}" does not exist`;
    expect(run.stdout.trim()).toBe(`caught: ConfigError: ${problem}`);
    expect(occurrences(run.stderr, problem), run.stderr).toBe(1);
    expect(run.stderr).not.toContain("    at ");
    expect(run.code).toBe(1);
  });
});

describe.each(DRIVERS)("connection errors name the problem and the URL (%s)", (driver) => {
  const start = (url: string) => createApp({ connection: { url, driver }, config });

  it.each([
    [
      "postgresql+psycopg://localhost/app",
      'the scheme "postgresql+psycopg:" of "postgresql+psycopg://localhost/app" is not supported',
    ],
    ["sqlite://data.db", 'the scheme "sqlite:" of "sqlite://data.db" is not supported'],
    ["mysql://root:pw@localhost/app", 'the scheme "mysql:" of "mysql://root:***@localhost/app" is not supported'],
    ["data.db", '"data.db" names no scheme; use "file:data.db" for a SQLite file'],
    ["file:", '"file:" names no file'],
  ])("%s is refused", async (url, problem) => {
    await expect(start(url)).rejects.toThrow(`connection.url: ${problem}`);
  });

  it("a database file in a directory that does not exist is refused, naming both", async () => {
    const url = `file:${join(dir, "missing", "deeper", "data.db")}`;
    const error = await start(url).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe("ConfigError");
    expect(error?.message).toBe(
      `connection.url: the directory ${join(dir, "missing", "deeper")} of "${url}" does not exist`,
    );
  });

  it("a file where the directory should be is refused", async () => {
    writeFileSync(join(dir, "plain-file"), "");
    const url = `file:${join(dir, "plain-file", "data.db")}`;
    await expect(start(url)).rejects.toThrow(
      `connection.url: ${join(dir, "plain-file")} in "${url}" is not a directory`,
    );
  });

  it("file:, file:// and :memory: still open", async () => {
    for (const url of [`file:${join(dir, `ok-${driver}.db`)}`, `file://${join(dir, `ok2-${driver}.db`)}`, ":memory:"]) {
      const app = await start(url);
      await app.close();
    }
  });
});

describe("connection.driver", () => {
  it("an unknown driver is refused, naming the known ones", async () => {
    await expect(createApp({ connection: { url: ":memory:", driver: "sqlite3" as never }, config })).rejects.toThrow(
      'connection.driver: must be "better-sqlite3" or "libsql", not "sqlite3"',
    );
  });
});

describe("a database server that cannot be used fails startup in one line: URL, what to check (11.1)", () => {
  let cluster: Postgres;
  beforeAll(async () => {
    cluster = await startPostgres();
    const client = new pg.Client({ connectionString: withDatabase(cluster.baseUrl, "postgres") });
    await client.connect();
    await client.query("create role limited login password 'limited-pw'");
    await client.end();
  }, 120_000);
  afterAll(() => cluster?.close());

  const problemOf = (url: string) =>
    createApp({ connection: { url }, config }).then(
      async (app) => {
        await app.close();
        return "started";
      },
      (e: Error) => `${e.name}: ${e.message}`,
    );
  const withCredentials = (user: string, password: string, database: string) =>
    withDatabase(cluster.baseUrl.replace(/\/\/[^@]*@/, `//${user}:${password}@`), database);

  it("nothing listening: PostgreSQL and a libSQL server", async () => {
    const port = await freePort();
    expect(await problemOf(`postgres://app:s3cret@127.0.0.1:${port}/app`)).toBe(
      `ConfigError: connection.url: cannot use "postgres://app:***@127.0.0.1:${port}/app": nothing accepts connections there: is the server running, are host and port right?`,
    );
    expect(await problemOf(`http://127.0.0.1:${port}`)).toBe(
      `ConfigError: connection.url: cannot use "http://127.0.0.1:${port}": the server cannot be reached: is it running, are host and port right?`,
    );
  });

  it("a host that takes the connection and never answers: no connection within pool.timeoutMs", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const url = `postgres://app:s3cret@127.0.0.1:${port}/app`;
      const problem = await createApp({ connection: { url, pool: { timeoutMs: 200 } }, config }).then(
        (app) => app.close().then(() => "started"),
        (e: Error) => `${e.name}: ${e.message}`,
      );
      expect(problem).toBe(
        `ConfigError: connection.url: cannot use "postgres://app:***@127.0.0.1:${port}/app": no connection within pool.timeoutMs: check the host, the port and any firewall (or raise pool.timeoutMs)`,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it("a host that does not resolve", async () => {
    expect(await problemOf("postgresql://app@no-such-host.invalid/app")).toMatch(
      /^ConfigError: connection\.url: cannot use "postgresql:\/\/app@no-such-host\.invalid\/app": the host name does not resolve/,
    );
  });

  it("a wrong password, never echoed", async () => {
    const problem = await problemOf(withCredentials("postgres", "wrong-secret", "postgres"));
    expect(problem).toContain("the server refused the user name or password in the URL");
    expect(problem).not.toContain("wrong-secret");
  });

  it("a database that does not exist", async () => {
    expect(await problemOf(withCredentials("postgres", "citadel-test", "no_such_db"))).toContain(
      "the database named in the URL does not exist: create it first",
    );
  });

  it("a user without permission to create tables", async () => {
    expect(await problemOf(withCredentials("limited", "limited-pw", "postgres"))).toContain(
      "the user may not create tables there: grant it CREATE on the schema, or connect as the owner",
    );
  });

  it("the same server with the right credentials starts", async () => {
    const url = await createDatabase(cluster.baseUrl);
    expect(await problemOf(url)).toBe("started");
  });
});
