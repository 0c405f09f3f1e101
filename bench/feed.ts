/**
 * `npm run bench:feed`: change-feed delivery (§8) on the guarded blog, on BENCH_ENGINE (sqlite unless set).
 * The server runs in a process of its own; this process runs the writers (BENCH_CONNECTIONS authors creating
 * posts in a loop for BENCH_SECONDS) and BENCH_SUBSCRIBERS streams of `GET /api/data/posts/changes` (100), one
 * per author. Each post's title carries the writer's `performance.now()` when it sent the create; a subscriber
 * that receives the event subtracts it from its own clock (same process, same clock): that is the delivery
 * latency, from the request leaving the writer to the event parsed at the subscriber (also printed from the
 * create's response, which the event may precede). The writers run in turns without subscribers and with them,
 * BENCH_ROUNDS times (3), so the writers' slowdown shows. This process's CPU use is printed, to tell a server
 * that is slow from a client that is. Nothing is asserted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CONNECTIONS, DURATION_SECONDS } from "./lib.js";
import { engineOf, loginAuthor, openDatabase, startBlog } from "./servers.js";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** How long the subscribers may take to receive the last events once the writers stop. */
const DRAIN_MS = 10_000;
const SELF = fileURLToPath(import.meta.url);
const STAMP = "feed-bench ";

/** Child process: the blog on `url`, seeded with one author per subscriber or writer; prints `READY <url>`. */
async function serveOne(url: string) {
  const authors = Math.max(SUBSCRIBERS, CONNECTIONS);
  const server = await startBlog(url, { seed: { authors, posts: 100 } });
  process.stdout.write(`READY ${server.url}\n`);
  process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
}

function spawnServer(url: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve", url], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("READY ")) resolve({ url: line.slice(6), child });
    });
  });
}

async function stopServer(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

interface Author {
  token: string;
  userId: number;
}

/** One subscriber: parses the stream and records when each create arrived. */
interface Subscriber {
  /** the stamp (the writer's send time) of each create received, and when it arrived: pairs, flat */
  arrivals: number[];
  ended: boolean;
  close(): void;
}

async function subscribe(baseUrl: string, author: Author): Promise<Subscriber> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/api/data/posts/changes`, {
    headers: { accept: "text/event-stream", authorization: `Bearer ${author.token}` },
    signal: abort.signal,
  });
  if (res.status !== 200) throw new Error(`subscribe: ${res.status} ${await res.text()}`);
  const sub: Subscriber = { arrivals: [], ended: false, close: () => abort.abort() };
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split("\n");
          const event = lines.find((line) => line.startsWith("event: "))?.slice(7);
          if (event === "ready") ready();
          if (event !== "create") continue;
          const data = lines
            .filter((line) => line.startsWith("data: "))
            .map((line) => line.slice(6))
            .join("\n");
          const title = (JSON.parse(data) as { record: { title: string } }).record.title;
          if (!title.startsWith(STAMP)) continue;
          const stamp = Number(title.slice(STAMP.length));
          sub.arrivals.push(stamp, performance.now());
        }
      }
    } catch {
      // aborted by close()
    } finally {
      sub.ended = true;
      ready();
    }
  })();
  await isReady;
  return sub;
}

interface WriterFigures {
  creates: number;
  errors: number;
  seconds: number;
  latencies: number[];
  /** when each create's response came, by its stamp */
  responded: Map<number, number>;
}

/** CONNECTIONS writers, each creating posts one after the other for DURATION_SECONDS. */
async function write(baseUrl: string, authors: Author[]): Promise<WriterFigures> {
  const figures: WriterFigures = {
    creates: 0,
    errors: 0,
    seconds: DURATION_SECONDS,
    latencies: [],
    responded: new Map(),
  };
  const start = performance.now();
  const stop = start + DURATION_SECONDS * 1000;
  await Promise.all(
    authors.map(async (author) => {
      while (performance.now() < stop) {
        const sent = performance.now();
        const res = await fetch(`${baseUrl}/api/data/posts`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${author.token}` },
          body: JSON.stringify({
            title: `${STAMP}${sent}`,
            content: "lorem ipsum",
            published: true,
            author_id: author.userId,
          }),
        });
        await res.arrayBuffer();
        const now = performance.now();
        if (res.status === 201) {
          figures.creates++;
          figures.latencies.push(now - sent);
          figures.responded.set(sent, now);
        } else figures.errors++;
      }
    }),
  );
  figures.seconds = (performance.now() - start) / 1000;
  return figures;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${value.toFixed(1)} ms`;
const spread = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${ms(percentile(sorted, 50))}   p99 ${ms(percentile(sorted, 99))}   max ${ms(sorted.at(-1) ?? Number.NaN)}`;
};

/** What the subscribers received in one round with writers. */
interface Round {
  writes: WriterFigures;
  /** from the create's send, and from its response, to the event's arrival (ms) */
  fromSend: number[];
  fromResponse: number[];
  delivered: number;
  /** streams the server ended before the bench closed them (a subscriber too slow is dropped) */
  dropped: number;
  /** from the first create to the last delivery */
  seconds: number;
  /** this process's CPU time over the round, in cores (the subscribers' parsing shares it with the writers) */
  cores: number;
}

async function roundWithSubscribers(baseUrl: string, authors: Author[], writers: Author[]): Promise<Round> {
  const subs = await Promise.all(authors.slice(0, SUBSCRIBERS).map((a) => subscribe(baseUrl, a)));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const writes = await write(baseUrl, writers);
  // every stream still open receives every create (in commit order, not the order they were sent), or the drain gives up
  const until = performance.now() + DRAIN_MS;
  while (subs.some((s) => !s.ended && s.arrivals.length / 2 < writes.creates) && performance.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const round: Round = {
    writes,
    fromSend: [],
    fromResponse: [],
    delivered: 0,
    dropped: 0,
    seconds,
    cores: (used.user + used.system) / 1e6 / seconds,
  };
  for (const sub of subs) {
    if (sub.ended) round.dropped++;
    sub.close();
    for (let i = 0; i < sub.arrivals.length; i += 2) {
      const [stamp, at] = [sub.arrivals[i]!, sub.arrivals[i + 1]!];
      round.delivered++;
      round.fromSend.push(at - stamp);
      const responded = writes.responded.get(stamp);
      if (responded !== undefined) round.fromResponse.push(at - responded);
    }
  }
  return round;
}

function writerFigures(runs: WriterFigures[]) {
  const sorted = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    rps: median(runs.map((r) => r.creates / r.seconds)),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors: runs.reduce((n, r) => n + r.errors, 0),
  };
}

async function main() {
  const engine = engineOf(process.env.BENCH_ENGINE ?? "sqlite");
  const db = await openDatabase(engine);
  const server = await spawnServer(db.url);
  try {
    const authors: Author[] = [];
    for (let i = 0; i < Math.max(SUBSCRIBERS, CONNECTIONS); i++) authors.push(await loginAuthor(server.url, i));
    const writers = authors.slice(0, CONNECTIONS);
    const alone: WriterFigures[] = [];
    const rounds: Round[] = [];
    // in turns, so that a noisy machine moves both
    for (let i = 0; i < ROUNDS; i++) {
      alone.push(await write(server.url, writers));
      rounds.push(await roundWithSubscribers(server.url, authors, writers));
    }

    const delivered = rounds.reduce((n, r) => n + r.delivered, 0);
    const expected = rounds.reduce((n, r) => n + r.writes.creates * SUBSCRIBERS, 0);
    const seconds = rounds.reduce((n, r) => n + r.seconds, 0);
    console.log(
      `\nchange feed, ${engine}: ${CONNECTIONS} writers creating posts for ${DURATION_SECONDS}s, ${SUBSCRIBERS} ` +
        `subscribers (one per author, every post), ${ROUNDS} rounds in turns; the server in its own process`,
    );
    console.log(`delivery, from the create's send     ${spread(rounds.flatMap((r) => r.fromSend))}`);
    console.log(`delivery, from the create's response ${spread(rounds.flatMap((r) => r.fromResponse))}`);
    console.log(
      `deliveries ${delivered} of ${expected}, ${(delivered / seconds).toFixed(0)}/s (writing and draining); ` +
        `streams dropped by the server ${rounds.reduce((n, r) => n + r.dropped, 0)}; ` +
        `this process (writers + subscribers) used ${median(rounds.map((r) => r.cores)).toFixed(2)} cores`,
    );
    const off = writerFigures(alone);
    const on = writerFigures(rounds.map((r) => r.writes));
    for (const [name, r] of [
      ["creates, no subscriber", off],
      [`creates, ${SUBSCRIBERS} subscribers`, on],
    ] as const)
      console.log(
        `${name.padEnd(28)} ${r.rps.toFixed(0).padStart(6)} req/s (median)   p50 ${ms(r.p50)}   p99 ${ms(r.p99)}   errors ${r.errors}`,
      );
    console.log(`creates with / without subscribers: ${(on.rps / off.rps).toFixed(2)}`);
  } finally {
    await stopServer(server.child);
    await db.close();
  }
}

const { values: args } = parseArgs({ options: { serve: { type: "string" } } });
if (args.serve !== undefined) await serveOne(args.serve);
else await main();
