/**
 * `npm run bench:audit`: an author's create on the guarded blog with the audit trail off and on (§7: one
 * chained entry per row, in the mutation's transaction), on BENCH_ENGINE (sqlite unless set). The two servers
 * are driven in turns, BENCH_ROUNDS times (3), and each keeps its median, so that a noisy machine moves both.
 * Both servers run in this process and autocannon in its own, so this process's CPU time over a round is the
 * driven server's: CPU per request is printed beside requests/s, a figure other load on the machine moves less.
 */
import { drive, type Figures } from "./lib.js";
import { engineOf, loginAuthor, openDatabase, startBlog } from "./servers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const engine = engineOf(process.env.BENCH_ENGINE ?? "sqlite");

async function server(audit: boolean) {
  const db = await openDatabase(engine);
  const handle = await startBlog(db.url, { seed: { authors: 2, posts: 100 }, audit });
  const author = await loginAuthor(handle.url, 0);
  const body = JSON.stringify({
    title: "Bench post",
    content: "lorem ipsum",
    published: true,
    author_id: author.userId,
  });
  const scenario = {
    name: `author create, audit ${audit ? "on" : "off"}`,
    url: `${handle.url}/api/data/posts`,
    method: "POST" as const,
    body,
    headers: { authorization: `Bearer ${author.token}` },
  };
  const close = async () => {
    await handle.close();
    await db.close();
  };
  return { scenario, close };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

type Round = Figures & { cpuPerRequest: number };

/** One round against a server, with the CPU time this process spent serving it, per request answered. */
async function round(scenario: Parameters<typeof drive>[0]): Promise<Round> {
  const before = process.cpuUsage();
  const figures = await drive(scenario);
  const { user, system } = process.cpuUsage(before);
  return { ...figures, cpuPerRequest: (user + system) / Math.max(1, figures.requests) };
}

const off = await server(false);
const on = await server(true);
const figures = { off: [] as Round[], on: [] as Round[] };
for (let i = 0; i < ROUNDS; i++) {
  figures.off.push(await round(off.scenario));
  figures.on.push(await round(on.scenario));
}
await off.close();
await on.close();

console.log(`\naudit trail off vs on, ${engine}, ${ROUNDS} rounds in turns (medians)`);
for (const [name, runs] of Object.entries(figures)) {
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  const rps = median(runs.map((r) => r.rps)).toFixed(0);
  const latency = `p50 ${median(runs.map((r) => r.p50))} ms   p99 ${median(runs.map((r) => r.p99))} ms`;
  const cpu = median(runs.map((r) => r.cpuPerRequest)).toFixed(0);
  console.log(
    `author create, audit ${name.padEnd(4)} ${rps.padStart(7)} req/s   ${latency}   server CPU ${cpu.padStart(5)} µs/request   errors ${errors}`,
  );
}
const ratio = median(figures.on.map((r) => r.rps)) / median(figures.off.map((r) => r.rps));
const cpuRatio = median(figures.off.map((r) => r.cpuPerRequest)) / median(figures.on.map((r) => r.cpuPerRequest));
console.log(
  `audit on / off: ${ratio.toFixed(2)} (requests/s), ${cpuRatio.toFixed(2)} (server CPU per request, inverted)`,
);
