/**
 * `npm run bench:load -- --engine sqld|postgres|sqlite --seconds 60 --connections 200`: several Citadel
 * servers on one database (three on a libSQL server or PostgreSQL, one on a SQLite file; `--servers` to
 * change), each in its own process, under a mixed load from this process: 35% anonymous filtered lists, 35%
 * authenticated read-one, 20% creates, 10% updates of rows the same client created. Every acknowledged write
 * is then looked for in the database: a lost write is an acknowledged create that is missing, or a row whose
 * last acknowledged update is not its value (§11.4: several servers behave as one). Before the load, the
 * same client drives a trivial Node server, to show how many requests per second the client itself can make.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Op, runClient } from "./load-client.js";
import { benchConfig, engineOf, FILTERED_LIST, loginAuthor, openDatabase, startBlog } from "./servers.js";

const SEED = { authors: 20, posts: 5_000 };
const SELF = fileURLToPath(import.meta.url);

const { values: args } = parseArgs({
  options: {
    engine: { type: "string", default: "sqld" },
    seconds: { type: "string", default: "60" },
    connections: { type: "string", default: "200" },
    servers: { type: "string" },
    // internal: this file run as one Citadel server process
    serve: { type: "string" },
    seed: { type: "boolean", default: false },
    trivial: { type: "boolean", default: false },
  },
});

if (args.serve !== undefined) await serveOne(args.serve, args.seed);
else if (args.trivial) serveTrivial();
else await main();

/** Child process: one Citadel server on `url`; prints `READY <base url>`; unexpected errors go to stderr with a time. */
async function serveOne(url: string, seed: boolean) {
  const log = (message: string, error?: unknown) =>
    process.stderr.write(
      `${new Date().toISOString()} citadel: ${message} ${error instanceof Error ? error.stack : (error ?? "")}\n`,
    );
  const server = await startBlog(url, { seed: seed ? SEED : undefined, log });
  process.stdout.write(`READY ${server.url}\n`);
  process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
}

/** Child process: the cheapest HTTP answer Node gives, to measure the client alone. */
function serveTrivial() {
  const server = createServer((_req, res) => res.end('{"ok":true}'));
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`READY http://127.0.0.1:${port}\n`);
  });
  process.on("SIGTERM", () => process.exit(0));
}

interface Child {
  url: string;
  process: ChildProcess;
  logFile: string;
}

/** Run this file as a child with `childArgs`; resolves with the base URL it printed. */
function spawnChild(childArgs: string[], logFile: string): Promise<Child> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, ...childArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.pipe(createWriteStream(logFile));
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${childArgs.join(" ")} exited with ${code}; see ${logFile}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("READY ")) resolve({ url: line.slice(6), process: child, logFile });
    });
  });
}

async function stop(child: Child) {
  if (child.process.exitCode !== null) return;
  const exited = new Promise((resolve) => child.process.once("exit", resolve));
  child.process.kill("SIGTERM");
  const timer = setTimeout(() => child.process.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function main() {
  const engine = engineOf(args.engine);
  const seconds = Number(args.seconds);
  const connections = Number(args.connections);
  const serverCount = Number(args.servers ?? (engine === "sqlite" ? 1 : 3));
  const logs = mkdtempSync(join(tmpdir(), "citadel-load-"));

  // calibration: the client against a trivial server (no database, no Citadel)
  const trivial = await spawnChild(["--trivial"], join(logs, "trivial.log"));
  const calibration = await runClient({
    bases: [trivial.url],
    connections,
    seconds: Math.min(5, seconds),
    pick: () => ({ kind: "trivial", method: "GET", path: "/" }),
  });
  await stop(trivial);

  const db = await openDatabase(engine);
  const servers: Child[] = [];
  try {
    servers.push(await spawnChild(["--serve", db.url, "--seed"], join(logs, "server-0.log")));
    for (let i = 1; i < serverCount; i++)
      servers.push(await spawnChild(["--serve", db.url], join(logs, `server-${i}.log`)));
    const bases = servers.map((s) => s.url);
    const authors: { token: string; userId: number }[] = [];
    for (let i = 0; i < SEED.authors; i++) authors.push(await loginAuthor(bases[i % bases.length]!, i));

    const expected = new Map<number, string>(); // row id → the value of its last acknowledged write
    // values sent to a row after its last acknowledged write and not acknowledged (no answer, 4xx, 5xx)
    const unacknowledged = new Map<number, Set<string>>();
    const mine: number[][] = Array.from({ length: connections }, () => []);
    const seq = new Array<number>(connections).fill(0);
    const pick = (worker: number): Op => {
      const author = authors[worker % authors.length]!;
      const auth = { authorization: `Bearer ${author.token}` };
      const n = seq[worker]!++;
      const r = Math.random();
      if (r < 0.35) return { kind: "list", method: "GET", path: FILTERED_LIST };
      if (r < 0.7) {
        const id = 1 + Math.floor(Math.random() * SEED.posts);
        return { kind: "read", method: "GET", path: `/api/data/posts/${id}`, headers: auth };
      }
      const own = mine[worker]!;
      if (r < 0.9 || own.length === 0) {
        const content = `created ${worker}-${n}`;
        return {
          kind: "create",
          method: "POST",
          path: "/api/data/posts",
          headers: auth,
          body: { title: `Load ${worker}-${n}`, content, published: n % 2 === 0, author_id: author.userId },
          done: (status, body) => {
            if (status < 200 || status >= 300) return;
            const id = (body as { data: { id: number } }).data.id;
            expected.set(id, content);
            own.push(id);
          },
        };
      }
      const id = own[Math.floor(Math.random() * own.length)]!;
      const content = `updated ${worker}-${n}`;
      return {
        kind: "update",
        method: "PATCH",
        path: `/api/data/posts/${id}`,
        headers: auth,
        body: { content },
        done: (status) => {
          if (status >= 200 && status < 300) {
            expected.set(id, content);
            unacknowledged.delete(id);
          } else unacknowledged.set(id, (unacknowledged.get(id) ?? new Set()).add(content));
        },
      };
    };
    const result = await runClient({ bases, connections, seconds, pick });
    for (const s of servers) await stop(s);

    // every acknowledged write, looked for in the database directly
    const { createApp } = await import("citadel");
    const app = await createApp({ connection: { url: db.url }, config: benchConfig(), options: { log: () => {} } });
    const rows = (await app.db.selectFrom("posts").select(["id", "content"]).execute()) as {
      id: number;
      content: string;
    }[];
    await app.close();
    const found = new Map(rows.map((row) => [Number(row.id), row.content]));
    let missing = 0;
    let stale = 0;
    let appliedUnacknowledged = 0; // not lost: a write that got no 2xx and happened anyway (no answer, or a 5xx)
    const examples: string[] = [];
    for (const [id, content] of expected) {
      const value = found.get(id);
      if (value === content) continue;
      if (value === undefined) missing++;
      else if (unacknowledged.get(id)?.has(value)) appliedUnacknowledged++;
      else stale++;
      if (examples.length < 5)
        examples.push(`post ${id}: expected "${content}", found ${JSON.stringify(value ?? null)}`);
    }
    const creates = result.byKind.get("create")?.ok ?? 0;
    const updates = result.byKind.get("update")?.ok ?? 0;

    console.log(
      `\nload on ${engine}: ${serverCount} Citadel server${serverCount > 1 ? "s" : ""} (own processes) on one database, ${connections} connections for ${seconds}s, ${SEED.posts} seeded posts`,
    );
    console.log(
      `client calibration (trivial Node server, same client, ${connections} connections): ${calibration.rps.toFixed(0)} req/s`,
    );
    result.print();
    console.log(
      `acknowledged creates ${creates}, acknowledged updates ${updates}, updates applied without a 2xx ${appliedUnacknowledged}`,
    );
    console.log(
      `lost writes: ${missing + stale} (acknowledged creates missing ${missing}, updates not there ${stale})`,
    );
    for (const line of examples) console.log(`  ${line}`);
    const fives = result.serverErrors();
    if (fives > 0 || missing + stale > 0) {
      process.exitCode = 1;
      console.log(`\n!!!!! ${fives} 5xx answers, ${missing + stale} lost writes !!!!!`);
      for (const [status, body] of result.samples) console.log(`one ${status} body: ${body}`);
    }
    for (const s of servers) {
      const lines = readFileSync(s.logFile, "utf8").split("\n").filter(Boolean);
      if (lines.length === 0) continue;
      console.log(`\n${s.logFile}: ${lines.filter((l) => l.includes("citadel:")).length} logged errors; first lines:`);
      for (const line of lines.slice(0, 12)) console.log(`  ${line}`);
    }
  } finally {
    for (const s of servers) await stop(s);
    await db.close();
  }
}
