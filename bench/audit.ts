/**
 * `npm run bench:audit`: an author's create on the guarded blog with the audit trail off and on (§7: one
 * chained entry per row, in the mutation's transaction), on BENCH_ENGINE (sqlite unless set). The two servers
 * are driven in turns, BENCH_ROUNDS times (3), and each keeps its median, so that a noisy machine moves both.
 */
import { drive } from "./lib.js";
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

const off = await server(false);
const on = await server(true);
const figures = { off: [] as Awaited<ReturnType<typeof drive>>[], on: [] as Awaited<ReturnType<typeof drive>>[] };
for (let round = 0; round < ROUNDS; round++) {
  figures.off.push(await drive(off.scenario));
  figures.on.push(await drive(on.scenario));
}
await off.close();
await on.close();

console.log(`\naudit trail off vs on, ${engine}, ${ROUNDS} rounds in turns (medians)`);
for (const [name, runs] of Object.entries(figures)) {
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  console.log(
    `author create, audit ${name.padEnd(4)} ${median(runs.map((r) => r.rps))
      .toFixed(0)
      .padStart(
        7,
      )} req/s   p50 ${median(runs.map((r) => r.p50))} ms   p99 ${median(runs.map((r) => r.p99))} ms   errors ${errors}`,
  );
}
const ratio = median(figures.on.map((r) => r.rps)) / median(figures.off.map((r) => r.rps));
console.log(`audit on / off: ${ratio.toFixed(2)}`);
