/**
 * `npm run bench:guard`: the blog example with 10,000 posts; the same list (limit 20) with the guard off and
 * on, for an authenticated commenter (may read everything) and for an anonymous caller (the policy filters
 * `published = true`, which the guard adds to the SQL); the anonymous list again with a publishable key (§5:
 * the key's digest and lookup on every request), and the anonymous list's CPU time per request in process. Then the tenancy tests' app (test/tenancy/fixture.ts) with
 * 10,000 notes over 10 accounts: a member's list with tenant isolation (§6: `account_id = ?` ANDed in) and
 * the same list without it. The figures of each ratio are driven in turns, BENCH_ROUNDS times (3), medians kept.
 */

import type { CitadelApp, CitadelConfig } from "citadel";
import { serve } from "citadel/adapter/node";
import { blog } from "../examples/access/blog.js";
import { validateConfig } from "../src/config/schema.js";
import { buildModels } from "../src/data/models.js";
import { compileRoles } from "../src/guard/compile.js";
import { Guard } from "../src/guard/guard.js";
import { compileSchema } from "../src/schema/compile.js";
import type { SchemaJSON } from "../src/schema/entity.js";
import { tenancyConfig } from "../test/tenancy/fixture.js";
import { drive, type Figures, printTable, type Scenario, tempDb } from "./lib.js";
import { benchConfig } from "./servers.js";

const POSTS = 10_000;
const ACCOUNTS = 10;
const NOTES = 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/**
 * The scenarios of a ratio, driven in turns ROUNDS times; each keeps its median round, so that a slow spell
 * of a shared machine (or the first run's warm-up) lands on both sides of the ratio instead of one.
 */
async function inTurns(scenarios: Scenario[]): Promise<Figures[]> {
  const runs: Figures[][] = scenarios.map(() => []);
  for (let round = 0; round < ROUNDS; round++) for (const [i, s] of scenarios.entries()) runs[i]!.push(await drive(s));
  return runs.map((r) => r.sort((a, b) => a.rps - b.rps)[Math.floor(r.length / 2)]!);
}

/** Log in through HTTP; returns the bearer token. */
async function login(baseUrl: string, email: string, password: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/password/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!res.ok) throw new Error(`login of ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** The blog with API keys on: a publishable key (acting as publishable_role, anonymous) is issued by the seed. */
async function start(guard: boolean) {
  const config = benchConfig({ guard });
  let publishableKey = "";
  const server = serve({
    connection: { url: `file:${tempDb()}` },
    config: { ...config, auth: { ...config.auth, api_keys: { enabled: true } } },
    port: 0,
    quiet: true,
    options: {
      seed: async (ctx) => {
        publishableKey = (await ctx.app.module.auth.apiKeys!.create({ name: "web", kind: "publishable" })).key;
        await ctx.app.module.auth.createUser({
          email: "reader@example.com",
          password: "reader-password",
          role: "commenter",
        });
        for (let start = 0; start < POSTS; start += 1000)
          await ctx.app.module.data.create(
            "posts",
            Array.from({ length: 1000 }, (_, i) => ({
              title: `Post ${start + i}`,
              content: "lorem ipsum ".repeat(20),
              published: (start + i) % 2 === 0,
              author_id: 1,
            })),
          );
      },
    },
  });
  await server.ready;
  return { server, token: await login(server.url, "reader@example.com", "reader-password"), publishableKey };
}

/**
 * The tenancy tests' app with NOTES notes spread over ACCOUNTS accounts, or the same notes without tenancy;
 * returns the token of a member of account 1 (the member role reads every note: only the tenant scope filters).
 */
async function startNotes(tenancy: boolean) {
  const config: CitadelConfig = tenancyConfig(tenancy ? {} : { tenancy: { enabled: false } });
  const server = serve({
    connection: { url: `file:${tempDb()}` },
    config,
    port: 0,
    quiet: true,
    options: {
      seed: async ({ app }) => {
        if (tenancy)
          await app.module.data.create(
            "accounts",
            Array.from({ length: ACCOUNTS }, (_, i) => ({ name: `Account ${i + 1}`, slug: `a${i + 1}` })),
          );
        const member = await app.module.auth.createUser({
          email: "member@a.test",
          password: "member-password",
          role: "member",
          ...(tenancy ? { account_id: 1 } : {}),
        });
        for (let start = 0; start < NOTES; start += 1000)
          await app.module.data.create(
            "notes",
            Array.from({ length: 1000 }, (_, i) => ({
              title: `Note ${start + i}`,
              author_id: member.id,
              ...(tenancy ? { account_id: ((start + i) % ACCOUNTS) + 1 } : {}),
            })),
          );
      },
    },
  });
  await server.ready;
  const token = await login(server.url, "member@a.test", "member-password");
  // what the member sees, so the table says it: every note, or account 1's only
  const res = await fetch(`${server.url}/api/data/notes?limit=1`, { headers: { authorization: `Bearer ${token}` } });
  const { meta } = (await res.json()) as { meta: { count: number } };
  return { server, token, visible: meta.count };
}

const figures: Figures[] = [];
const off = await start(false);
figures.push(
  await drive({
    name: "guard off: authenticated list limit 20",
    url: `${off.server.url}/api/data/posts?limit=20`,
    headers: { authorization: `Bearer ${off.token}` },
  }),
  await drive({ name: "guard off: anonymous list limit 20", url: `${off.server.url}/api/data/posts?limit=20` }),
);
await off.server.close();

const on = await start(true);
const auth = { authorization: `Bearer ${on.token}` };
figures.push(
  await drive({
    name: "guard on: authenticated list limit 20",
    url: `${on.server.url}/api/data/posts?limit=20`,
    headers: auth,
  }),
  ...(await inTurns([
    { name: "guard on: anonymous filtered list limit 20", url: `${on.server.url}/api/data/posts?limit=20` },
    {
      name: "guard on: same, with a publishable key",
      url: `${on.server.url}/api/data/posts?limit=20`,
      headers: { apikey: on.publishableKey },
    },
  ])),
);
const verifyCost = await keyVerifyCost(on.server.app!, on.publishableKey);
const anonCost = await listCost(on.server.app!, "/api/data/posts?limit=20");
await on.server.close();

printTable(`guard, blog example, ${POSTS} posts`, figures);
const [offAuthed, offAnon, onAuthed, onAnon, onKey] = figures;
const ratio = (a: Figures, b: Figures) => (a.rps / b.rps).toFixed(2);
console.log(`\nguard on / guard off, authenticated list: ${ratio(onAuthed!, offAuthed!)}`);
console.log(`guard on / guard off, anonymous list:     ${ratio(onAnon!, offAnon!)}`);
console.log(`publishable key / no key, anonymous list: ${ratio(onKey!, onAnon!)}`);
console.log(`publishable key verification, in process (digest + lookup by prefix): ${verifyCost.toFixed(0)} µs`);
console.log(`anonymous filtered list, in process (app.fetch, CPU per request, median of 5): ${anonCost.toFixed(0)} µs`);

/** A member's list among every account's notes: the tenant scope ANDed in, or no tenancy at all. */
const notes = [await startNotes(false), await startNotes(true)];
const list = (query: string) =>
  notes.map(({ server, token, visible }, tenancy) => ({
    name: `${tenancy ? "tenant-scoped" : "no tenancy"}, ${visible} visible: ${query}`,
    url: `${server.url}/api/data/notes?${query}`,
    headers: { authorization: `Bearer ${token}` },
  }));
const tenancyFigures = await inTurns([...list("limit=20"), ...list("limit=20&count=false")]);
for (const { server } of notes) await server.close();
printTable(`tenant isolation, tenancy tests' app, ${NOTES} notes over ${ACCOUNTS} accounts`, tenancyFigures);
const [plainList, scopedList, plainPage, scopedPage] = tenancyFigures;
console.log(`\ntenant-scoped / no tenancy, list with totals: ${ratio(scopedList!, plainList!)}`);
console.log(`tenant-scoped / no tenancy, count=false:      ${ratio(scopedPage!, plainPage!)}`);

/** The microseconds of one key verification (§5.6: a SHA-256 digest, a lookup by prefix, a comparison), in process. */
async function keyVerifyCost(app: CitadelApp, key: string): Promise<number> {
  const keys = app.module.auth.apiKeys!;
  const request = { key, origin: undefined, fromBrowser: false, client: "127.0.0.1" };
  for (let i = 0; i < 1000; i++) await keys.verify(request);
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) await keys.verify(request);
  return ((performance.now() - started) * 1000) / 10_000;
}

/**
 * The CPU microseconds of one request, in process (no socket, no load generator beside it): less swayed than
 * req/s by the other processes of a shared machine, which take turns on its cores but not this process's CPU time.
 */
async function listCost(app: CitadelApp, path: string): Promise<number> {
  const one = async () => {
    const res = await app.fetch(new Request(`http://localhost${path}`));
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  for (let i = 0; i < 2000; i++) await one();
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const started = process.cpuUsage();
    for (let i = 0; i < 2000; i++) await one();
    const { user, system } = process.cpuUsage(started);
    rounds.push((user + system) / 2000);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

/** The guard's own per-request work, without HTTP or SQL: one decision (lookup, and binding where needed). */
function decisionCost() {
  const validated = validateConfig(blog.config);
  const models = buildModels(compileSchema(validated.data as SchemaJSON, true));
  const guard = new Guard(compileRoles(validated.auth, models), models);
  const cases = [
    ["commenter reads posts (no filter)", { role: "commenter", user: { id: 3 } }, "data.entity.read"],
    ["anonymous reads posts (published = 1)", { role: undefined }, "data.entity.read"],
    ["author updates posts (author_id = @user.id)", { role: "author", user: { id: 3 } }, "data.entity.update"],
  ] as const;
  console.log("\nguard decision, in process (1,000,000 each)");
  for (const [name, subject, permission] of cases) {
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) guard.access(subject).find(permission, "posts");
    // 1,000,000 runs: the elapsed milliseconds are the nanoseconds of one run
    console.log(`${name.padEnd(48)} ${(performance.now() - started).toFixed(0).padStart(6)} ns`);
  }
}
decisionCost();
