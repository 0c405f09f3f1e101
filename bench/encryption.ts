/**
 * `npm run bench:encryption`: list requests/s of an entity with encrypted fields (one searchable, one not:
 * every row of the page is decrypted twice, AES-256-GCM through node:crypto) vs the same entity plain, on
 * BENCH_ENGINE (sqlite unless set); BENCH_LIMIT rows per page (20). Both servers run in this process and are
 * driven in turns, BENCH_ROUNDS times (3), by autocannon in its own process; medians are printed with the
 * server's CPU per request. Also an equality search on the searchable field (blind index) vs on the plain one.
 */
import { randomBytes } from "node:crypto";
import { type CitadelConfig, em, entity, text } from "citadel";
import { serve } from "citadel/adapter/node";
import { drive, type Figures, type Scenario } from "./lib.js";
import { engineOf, openDatabase } from "./servers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 20);
const ROWS = 2000;
const engine = engineOf(process.env.BENCH_ENGINE ?? "sqlite");
const KEYS = `bench:${randomBytes(32).toString("base64")}`;

function config(encrypted: boolean): CitadelConfig {
  const field = () => (encrypted ? text().encrypted() : text());
  const searchable = () => (encrypted ? text().encrypted({ searchable: true }) : text());
  const schema = em({
    patients: entity("patients", { name: text().required(), ssn: searchable(), notes: field() }),
  });
  return { data: schema.toJSON(), feed: { enabled: false } };
}

async function server(encrypted: boolean) {
  const db = await openDatabase(engine);
  const handle = serve({
    connection: { url: db.url },
    config: config(encrypted),
    options: { encryptionKeys: KEYS },
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
  });
  await handle.ready;
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    name: `patient ${i}`,
    ssn: `${100 + (i % 900)}-00-${1000 + i}`,
    notes: `notes of patient ${i}: ${"lorem ipsum ".repeat(4)}`,
  }));
  for (let i = 0; i < ROWS; i += 500) await handle.app!.module.data.create("patients", rows.slice(i, i + 500));
  const label = encrypted ? "encrypted" : "plain";
  const where = encodeURIComponent(JSON.stringify({ ssn: "142-00-1042" }));
  const scenarios: Scenario[] = [
    { name: `list ${LIMIT}, ${label}`, url: `${handle.url}/api/data/patients?limit=${LIMIT}&count=false` },
    { name: `ssn $eq, ${label}`, url: `${handle.url}/api/data/patients?where=${where}&count=false` },
  ];
  const close = async () => {
    await handle.close();
    await db.close();
  };
  return { scenarios, close };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
type Round = Figures & { cpuPerRequest: number };

async function round(scenario: Scenario): Promise<Round> {
  const before = process.cpuUsage();
  const figures = await drive(scenario);
  const { user, system } = process.cpuUsage(before);
  return { ...figures, cpuPerRequest: (user + system) / Math.max(1, figures.requests) };
}

const plain = await server(false);
const encrypted = await server(true);
const runs = new Map<string, Round[]>();
for (let i = 0; i < ROUNDS; i++)
  for (const [a, b] of plain.scenarios.map((s, k) => [s, encrypted.scenarios[k]!] as const))
    for (const s of [a, b]) runs.set(s.name, [...(runs.get(s.name) ?? []), await round(s)]);
await plain.close();
await encrypted.close();

console.log(`\nencrypted fields vs plain, ${engine}, ${ROWS} rows, ${ROUNDS} rounds in turns (medians)`);
const rps = (name: string) => median(runs.get(name)!.map((r) => r.rps));
for (const [name, rounds] of runs) {
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  const latency = `p50 ${median(rounds.map((r) => r.p50))} ms   p99 ${median(rounds.map((r) => r.p99))} ms`;
  const cpu = median(rounds.map((r) => r.cpuPerRequest)).toFixed(0);
  console.log(
    `${name.padEnd(22)} ${rps(name).toFixed(0).padStart(7)} req/s   ${latency}   server CPU ${cpu.padStart(5)} µs/request   errors ${errors}`,
  );
}
console.log(
  `encrypted / plain: list ${(rps(`list ${LIMIT}, encrypted`) / rps(`list ${LIMIT}, plain`)).toFixed(2)}, ` +
    `ssn $eq ${(rps("ssn $eq, encrypted") / rps("ssn $eq, plain")).toFixed(2)} (requests/s)`,
);
