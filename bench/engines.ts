/**
 * `npm run bench:engines`: the guarded blog example on each engine (a SQLite file, a libSQL server, PostgreSQL),
 * seeded with 5,000 posts; autocannon (in its own process) drives an anonymous filtered list and an author's
 * create for BENCH_SECONDS (10) each at BENCH_CONNECTIONS (10). One table, engines side by side, with the
 * status codes each scenario got; any 5xx is printed loudly (a saturated database must answer 503, never 500).
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { ENGINE_NAMES, type Engine, FILTERED_LIST, loginAuthor, openDatabase, startBlog } from "./servers.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const SEED = { authors: 10, posts: 5_000 };
const AUTOCANNON = join(createRequire(import.meta.url).resolve("autocannon"), "..", "autocannon.js");

interface Result {
  rps: number;
  p99: number;
  statuses: Record<string, number>;
  errors: number;
}

interface AutocannonJSON {
  requests: { average: number };
  latency: { p99: number };
  errors: number;
  statusCodeStats?: Record<string, { count: number }>;
}

async function drive(url: string, opts: { method?: string; body?: string; token?: string } = {}): Promise<Result> {
  const args = [AUTOCANNON, "--json", "-c", String(CONNECTIONS), "-d", String(SECONDS)];
  args.push("-m", opts.method ?? "GET", "-H", "content-type=application/json");
  if (opts.token) args.push("-H", `authorization=Bearer ${opts.token}`);
  if (opts.body) args.push("-b", opts.body);
  args.push(url);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const r = JSON.parse(stdout) as AutocannonJSON;
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
  return { rps: r.requests.average, p99: r.latency.p99, statuses, errors: r.errors };
}

/** One server on `engine`, both scenarios; a 5xx's body and the server's log lines are kept to report them. */
async function run(engine: Engine) {
  const db = await openDatabase(engine);
  const logged: string[] = [];
  let phase = "seed";
  const log = (message: string, error?: unknown) =>
    logged.push(`[during ${phase}] ${message} ${error instanceof Error ? error.stack : (error ?? "")}`);
  try {
    const server = await startBlog(db.url, { seed: SEED, log });
    const author = await loginAuthor(server.url, 0);
    phase = "list";
    const list = await drive(`${server.url}${FILTERED_LIST}`);
    const body = JSON.stringify({
      title: "Bench post",
      content: "lorem ipsum",
      published: true,
      author_id: author.userId,
    });
    phase = "create";
    await drain();
    const create = await drive(`${server.url}/api/data/posts`, { method: "POST", body, token: author.token });
    phase = "after the load";
    await drain();
    const sample = await sample5xx(server.url, body, author.token, [list, create]);
    phase = "close";
    await server.close();
    return { engine, list, create, logged, sample };
  } finally {
    await db.close();
  }
}

/** autocannon stops with requests in flight; let the server finish them before it closes its database. */
const drain = () => new Promise((resolve) => setTimeout(resolve, 3000));

/** When a scenario saw a 5xx, one more request of that kind, to show a body (autocannon keeps none). */
async function sample5xx(base: string, body: string, token: string, results: Result[]) {
  const has5xx = (r: Result) => Object.keys(r.statuses).some((code) => code.startsWith("5"));
  if (!results.some(has5xx)) return undefined;
  const res = has5xx(results[0]!)
    ? await fetch(`${base}${FILTERED_LIST}`)
    : await fetch(`${base}/api/data/posts`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body,
      });
  return `${res.status} ${res.headers.get("retry-after") ? `Retry-After: ${res.headers.get("retry-after")} ` : ""}${await res.text()}`;
}

const statusText = (r: Result) =>
  `${Object.entries(r.statuses)
    .map(([code, n]) => `${code}:${n}`)
    .join(" ")}${r.errors ? ` err:${r.errors}` : ""}`;

const results: Awaited<ReturnType<typeof run>>[] = [];
for (const engine of ENGINE_NAMES) results.push(await run(engine));

console.log(
  `\nguarded blog example, ${SEED.posts} posts, one Citadel server per engine (${CONNECTIONS} connections, ${SECONDS}s each, autocannon in its own process)`,
);
const cell = 22;
const row = (label: string, cells: string[]) =>
  console.log(`${label.padEnd(34)}${cells.map((c) => c.padStart(cell)).join("")}`);
const rows: [string, (r: (typeof results)[number]) => string][] = [
  ["", (r) => r.engine],
  ["anonymous filtered list req/s", (r) => r.list.rps.toFixed(0)],
  ["anonymous filtered list p99 ms", (r) => String(r.list.p99)],
  ["anonymous filtered list statuses", (r) => statusText(r.list)],
  ["author create req/s", (r) => r.create.rps.toFixed(0)],
  ["author create p99 ms", (r) => String(r.create.p99)],
  ["author create statuses", (r) => statusText(r.create)],
];
for (const [label, value] of rows) row(label, results.map(value));

for (const r of results) {
  const fives = [r.list, r.create].flatMap((x) => Object.entries(x.statuses).filter(([code]) => code.startsWith("5")));
  if (fives.length === 0 && r.logged.length === 0) continue;
  console.log(`\n!!!!! ${r.engine}: 5xx answers ${fives.map(([c, n]) => `${c}:${n}`).join(" ") || "none"} !!!!!`);
  if (r.sample) console.log(`one 5xx body: ${r.sample}`);
  for (const line of r.logged.slice(0, 5)) console.log(`server log: ${line}`);
  if (fives.some(([code]) => code !== "503")) process.exitCode = 1;
}
