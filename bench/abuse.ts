/**
 * `npm run bench:abuse`: the worst request of each kind an anonymous caller may send (§2.3), just at each bound
 * and past it, against a real server holding 100 projects × 100 tasks and 560 docs of 1 MB (the byte budget's
 * worst case: rows each within the body limit, too large together). Prints, per kind, the status, the
 * response size, the slowest round trip and the longest event-loop stall over a few runs. Server and client
 * share one process here, so the stall is the time every other client of this server would wait; the round
 * trip also includes loopback and reading the body. Both must stay in milliseconds.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { CitadelConfig } from "citadel";
import { boolean, em, entity, number, relation, text } from "citadel";
import { serve } from "citadel/adapter/node";
import { MAX_SORT_KEYS } from "../src/query/options.js";
import { MAX_PATTERN } from "../src/query/where.js";
import { tempDb } from "./lib.js";

const PROJECTS = 100;
const TASKS_PER_PROJECT = 100;
/** The audit's huge rows: each written within the body limit, hundreds of megabytes together. */
const DOCS = Number(process.env.BENCH_DOCS ?? 560);
const DOC = "d".repeat(1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECRET = "bench-secret-that-is-at-least-32-bytes-long";

const schema = em(
  {
    projects: entity("projects", { name: text().required(), budget: number(), public: boolean(), notes: text() }),
    tasks: entity("tasks", { title: text().required(), done: boolean(), points: number(), body: text() }),
    docs: entity("docs", { title: text().required(), body: text() }),
  },
  ({ projects, tasks, docs }) => [
    relation(tasks, "project").manyToOne(projects),
    relation(docs, "project").manyToOne(projects),
  ],
);

const config: CitadelConfig = {
  data: schema.toJSON(),
  auth: {
    enabled: true,
    jwt: { secret: SECRET },
    guard: { enabled: true },
    roles: {
      // reads everything but budgets: the widest an anonymous caller gets in practice
      anonymous: {
        is_default: true,
        permissions: [{ permission: "data.entity.read", policies: [{ effect: "allow", omit: ["budget"] }] }],
      },
    },
  },
};

/** Long texts of one repeated letter: the worst subject for a pattern of many wildcards. */
const LONG = "a".repeat(1000);

async function start() {
  const server = serve({ connection: { url: `file:${tempDb()}` }, config, port: 0, quiet: true });
  await server.ready;
  const data = server.app!.module.data;
  await data.create(
    "projects",
    Array.from({ length: PROJECTS }, (_, i) => ({ name: `Project ${i}`, budget: i, public: i % 2 === 0, notes: LONG })),
  );
  for (let p = 1; p <= PROJECTS; p++)
    await data.create(
      "tasks",
      Array.from({ length: TASKS_PER_PROJECT }, (_, i) => ({
        title: `Task ${p}.${i}`,
        done: i % 3 === 0,
        points: (i * 7919) % 101,
        body: LONG,
        project_id: p,
      })),
    );
  for (let d = 0; d < DOCS; d += 20)
    await data.create(
      "docs",
      Array.from({ length: Math.min(20, DOCS - d) }, (_, i) => ({ title: `Doc ${d + i}`, body: DOC, project_id: 1 })),
    );
  return server;
}

interface Case {
  kind: string;
  name: string;
  path: string;
  body?: unknown;
}

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
const query = (entity: string, body: unknown): Omit<Case, "kind" | "name"> => ({
  path: `/api/data/${entity}/query`,
  body,
});

const taskFields = ["id", "title", "done", "points", "body", "project_id", "created_at", "updated_at"];
const sortKeys = ["-points", "done", "title", "-body", "project_id", "-created_at", "updated_at", "id"];
// many wildcards against a long run of one letter, ending in a letter that never matches
const worstPattern = (length: number) => `${"*a".repeat(length).slice(0, length - 1)}b`;

const cases: Case[] = [
  {
    kind: "sort",
    name: `${MAX_SORT_KEYS} keys, limit 1000 (at the bound)`,
    ...query("tasks", { limit: 1000, sort: sortKeys }),
  },
  { kind: "sort", name: `${MAX_SORT_KEYS + 1} keys`, ...query("tasks", { sort: [...sortKeys, "title"] }) },
  {
    kind: "sort",
    name: "20,000 keys (0.1 MB body)",
    ...query("tasks", { sort: Array(20_000).fill("title").join(",") }),
  },
  { kind: "sort", name: "40,000 keys as { by }", ...query("tasks", { sort: Array(40_000).fill({ by: "id" }) }) },

  {
    kind: "select",
    name: `${taskFields.length} names + duplicates, limit 1000 (at the bound)`,
    ...query("tasks", { limit: 1000, select: [...taskFields.slice(0, 7), "id"] }),
  },
  { kind: "select", name: `${taskFields.length + 1} names`, ...query("tasks", { select: [...taskFields, "id"] }) },
  {
    kind: "select",
    name: "300,000 names (0.9 MB body)",
    ...query("tasks", { select: Array(300_000).fill("id").join(",") }),
  },

  {
    kind: "pattern",
    name: `$like ${MAX_PATTERN} chars of wildcards over 10,000 long texts`,
    ...query("tasks", { limit: 1000, where: { body: { $like: worstPattern(MAX_PATTERN) } } }),
  },
  {
    kind: "pattern",
    name: `$ilike ${MAX_PATTERN} chars of wildcards over 10,000 long texts`,
    ...query("tasks", { limit: 1000, where: { body: { $ilike: worstPattern(MAX_PATTERN) } } }),
  },
  {
    kind: "pattern",
    name: `$ilike ${MAX_PATTERN + 1} chars`,
    ...query("tasks", { where: { body: { $ilike: worstPattern(MAX_PATTERN + 1) } } }),
  },
  {
    kind: "pattern",
    name: "$like 50,001 chars",
    ...query("tasks", { where: { body: { $like: "*".repeat(50_001) } } }),
  },

  {
    kind: "with",
    name: "100 projects × 99 tasks = 10,000 rows (at the budget)",
    ...query("projects", { limit: 100, with: { tasks: { limit: 99, select: taskFields } } }),
  },
  {
    kind: "with",
    name: "1000 tasks → project → 8 tasks each = 10,000 rows, 2 levels",
    ...query("tasks", { limit: 1000, with: { project: { with: { tasks: { limit: 8 } } } } }),
  },
  {
    kind: "with",
    name: "3 levels: 10 → 99 tasks → project → 8 tasks = 9,910 rows",
    path: `/api/data/projects?limit=10&with=${q({ tasks: { limit: 99, with: { project: { with: { tasks: { limit: 8 } } } } } })}`,
  },
  {
    kind: "with",
    name: "100 projects × 100 tasks = 10,100 rows",
    ...query("projects", { limit: 100, with: { tasks: { limit: 100 } } }),
  },
  {
    kind: "with",
    name: "1000 × 1000 × 1000 (the 58 MB request of the issue)",
    ...query("tasks", { limit: 1000, with: { project: { with: { tasks: { limit: 1000, with: { project: {} } } } } } }),
  },
  {
    kind: "with",
    name: "4 levels",
    ...query("projects", { with: { tasks: { with: { project: { with: { tasks: { with: { project: {} } } } } } } } }),
  },

  {
    kind: "bytes",
    name: "16 docs of 1 MB = 16 MB (at the 16 MiB budget)",
    path: "/api/data/docs?limit=16",
  },
  { kind: "bytes", name: "17 docs of 1 MB", path: "/api/data/docs?limit=17" },
  {
    kind: "bytes",
    name: `${DOCS} docs of 1 MB, limit 1000 (the audit's 500 after 7 s)`,
    path: "/api/data/docs?limit=1000",
  },
  {
    kind: "bytes",
    name: `${DOCS} docs of 1 MB, limit 1000, sorted by a column after the body`,
    path: "/api/data/docs?limit=1000&sort=-updated_at&count=false",
  },
  {
    kind: "bytes",
    name: `1 project with ${DOCS} docs of 1 MB`,
    path: `/api/data/projects?limit=1&with=${q({ docs: { limit: 1000 } })}`,
  },
  {
    kind: "bytes",
    name: "9 docs → project → 9 docs: 9 MB + 9 × 9 MB",
    path: `/api/data/docs?limit=9&with=${q({ project: { with: { docs: { limit: 9 } } } })}`,
  },
];

interface Result {
  status: number;
  bytes: number;
  roundTrip: number;
  stall: number;
}

async function send(url: string, c: Case): Promise<Result> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const started = performance.now();
  const res = await fetch(url + c.path, {
    method: c.body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: c.body === undefined ? undefined : JSON.stringify(c.body),
  });
  const body = await res.arrayBuffer();
  const roundTrip = performance.now() - started;
  loop.disable();
  return { status: res.status, bytes: body.byteLength, roundTrip, stall: loop.max / 1e6 };
}

const server = await start();
console.log(`\nabuse: the worst anonymous request of each kind (§2.3), slowest of ${RUNS} runs`);
console.log(
  `${PROJECTS} projects × ${TASKS_PER_PROJECT} tasks, texts of ${LONG.length} characters, ${DOCS} docs of ${DOC.length} bytes, guard on`,
);
console.log(
  `${"kind".padEnd(8)} ${"request".padEnd(62)} ${"status".padStart(6)} ${"bytes".padStart(10)} ${"ms".padStart(8)} ${"stall ms".padStart(9)}`,
);
const slowest = new Map<string, number>();
for (const c of cases) {
  await send(server.url, c); // warm up
  let worst: Result | undefined;
  for (let i = 0; i < RUNS; i++) {
    const r = await send(server.url, c);
    if (!worst || r.roundTrip > worst.roundTrip) worst = { ...r, stall: Math.max(r.stall, worst?.stall ?? 0) };
    else worst.stall = Math.max(worst.stall, r.stall);
  }
  const w = worst!;
  slowest.set(c.kind, Math.max(slowest.get(c.kind) ?? 0, w.roundTrip));
  console.log(
    `${c.kind.padEnd(8)} ${c.name.padEnd(62)} ${String(w.status).padStart(6)} ${String(w.bytes).padStart(10)} ${w.roundTrip.toFixed(1).padStart(8)} ${w.stall.toFixed(1).padStart(9)}`,
  );
}
console.log("\nslowest round trip per kind:");
for (const [kind, ms] of slowest) console.log(`  ${kind.padEnd(8)} ${ms.toFixed(1)} ms`);
await server.close();
