/**
 * `npm run bench:field-rules`: list requests/s of a user reading 2,000 employees (limit 20) where `salary` has a
 * row-dependent read rule (§9.4: `@owns_record()`, a CASE flag computed in the same SELECT) vs the same app
 * without it; then the same list sorted by salary (the CASE in ORDER BY) and filtered on it (the rule ANDed
 * into the where), each against its rule-free twin. On BENCH_ENGINE (sqlite unless set); the scenarios are
 * driven in turns, BENCH_ROUNDS times (3), by autocannon in its own process; medians are printed.
 */
import { type CitadelConfig, em, entity, number, relation, text } from "citadel";
import { serve } from "citadel/adapter/node";
import { drive, type Figures, type Scenario } from "./lib.js";
import { engineOf, openDatabase } from "./servers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROWS = 2000;
const USERS = 20;
const engine = engineOf(process.env.BENCH_ENGINE ?? "sqlite");
const PASSWORD = "bench-password";

function config(rules: boolean): CitadelConfig {
  const schema = em(
    {
      employees: entity(
        "employees",
        { name: text().required(), salary: number() },
        rules ? { field_rules: { salary: { read: "@owns_record() or @has_role('hr')" } } } : {},
      ),
      users: entity("users", {}),
    },
    ({ employees, users }) => [relation(employees, "user").manyToOne(users, { owner: true })],
  );
  return {
    data: schema.toJSON(),
    feed: { enabled: false },
    auth: {
      enabled: true,
      jwt: { secret: "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz" },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
      rate_limit: { max_per_email: 1_000_000, max_per_address: 1_000_000 },
      roles: { user: { permissions: ["data.entity.read"] } },
    },
  };
}

async function server(rules: boolean) {
  const db = await openDatabase(engine);
  const handle = serve({
    connection: { url: db.url },
    config: config(rules),
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
    options: {
      seed: async (ctx) => {
        const ids: number[] = [];
        for (let u = 0; u < USERS; u++)
          ids.push(
            (await ctx.app.module.auth.createUser({ email: `u${u}@bench.test`, password: PASSWORD, role: "user" }))
              .id as number,
          );
        const rows = Array.from({ length: ROWS }, (_, i) => ({
          name: `employee ${i}`,
          salary: 1000 + ((i * 7919) % 9000),
          user_id: ids[i % USERS],
        }));
        for (let i = 0; i < ROWS; i += 500) await ctx.app.module.data.create("employees", rows.slice(i, i + 500));
      },
    },
  });
  await handle.ready;
  const login = await fetch(`${handle.url}/api/auth/password/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "u0@bench.test", password: PASSWORD }),
  });
  const { token } = (await login.json()) as { token: string };
  const label = rules ? "field rule" : "no rule";
  const headers = { authorization: `Bearer ${token}` };
  const where = encodeURIComponent(JSON.stringify({ salary: { $gt: 5000 } }));
  const base = `${handle.url}/api/data/employees?limit=20&count=false`;
  const scenarios: Scenario[] = [
    { name: `list 20, ${label}`, url: base, headers },
    { name: `sort salary, ${label}`, url: `${base}&sort=-salary`, headers },
    { name: `where salary, ${label}`, url: `${base}&where=${where}`, headers },
  ];
  const close = async () => {
    await handle.close();
    await db.close();
  };
  return { scenarios, close };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const plain = await server(false);
const ruled = await server(true);
const runs = new Map<string, Figures[]>();
for (let i = 0; i < ROUNDS; i++)
  for (const [a, b] of plain.scenarios.map((s, k) => [s, ruled.scenarios[k]!] as const))
    for (const s of [a, b]) runs.set(s.name, [...(runs.get(s.name) ?? []), await drive(s)]);
await plain.close();
await ruled.close();

console.log(`\nper-row field rule vs none, ${engine}, ${ROWS} rows, ${ROUNDS} rounds in turns (medians)`);
const rps = (name: string) => median(runs.get(name)!.map((r) => r.rps));
for (const [name, rounds] of runs) {
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  const latency = `p50 ${median(rounds.map((r) => r.p50))} ms   p99 ${median(rounds.map((r) => r.p99))} ms`;
  console.log(`${name.padEnd(26)} ${rps(name).toFixed(0).padStart(7)} req/s   ${latency}   errors ${errors}`);
}
for (const what of ["list 20", "sort salary", "where salary"])
  console.log(`${what}: field rule / none ${(rps(`${what}, field rule`) / rps(`${what}, no rule`)).toFixed(2)}`);
