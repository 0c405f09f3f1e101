/**
 * `npm run bench:guard`: the blog example with 10,000 posts; the same list (limit 20) with the guard off and
 * on, for an authenticated commenter (may read everything) and for an anonymous caller (the policy filters
 * `published = true`, which the guard adds to the SQL).
 */
import { serve } from "citadel/adapter/node";
import { blog } from "../examples/access/blog.js";
import { validateConfig } from "../src/config/schema.js";
import { buildModels } from "../src/data/models.js";
import { compileRoles } from "../src/guard/compile.js";
import { Guard } from "../src/guard/guard.js";
import { compileSchema } from "../src/schema/compile.js";
import type { SchemaJSON } from "../src/schema/entity.js";
import { drive, type Figures, printTable, tempDb } from "./lib.js";
import { benchConfig } from "./servers.js";

const POSTS = 10_000;

async function start(guard: boolean) {
  const server = serve({
    connection: { url: `file:${tempDb()}` },
    config: benchConfig({ guard }),
    port: 0,
    quiet: true,
    options: {
      seed: async (ctx) => {
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
  const res = await fetch(`${server.url}/api/auth/password/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "reader@example.com", password: "reader-password" }),
  });
  const { token } = (await res.json()) as { token: string };
  return { server, token };
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
  await drive({ name: "guard on: anonymous filtered list limit 20", url: `${on.server.url}/api/data/posts?limit=20` }),
);
await on.server.close();

printTable(`guard, blog example, ${POSTS} posts`, figures);
const [offAuthed, offAnon, onAuthed, onAnon] = figures;
console.log(`\nguard on / guard off, authenticated list: ${(onAuthed!.rps / offAuthed!.rps).toFixed(2)}`);
console.log(`guard on / guard off, anonymous list:     ${(onAnon!.rps / offAnon!.rps).toFixed(2)}`);

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
