/**
 * `npm run bench:guard`: the blog example with 10,000 posts; the same list (limit 20) with the guard off and
 * on, and on the guarded server an anonymous filtered list (`published = true` from the policy) against an
 * authenticated one (commenter: read everything) and an author (read everything, where on own posts).
 */
import type { CitadelConfig } from "citadel";
import { serve } from "citadel/adapter/node";
import { blog } from "../examples/blog/config.js";
import { drive, type Figures, printTable, tempDb } from "./lib.js";

const POSTS = 10_000;
const SECRET = "bench-secret-that-is-at-least-32-bytes-long";

function config(guard: boolean): CitadelConfig {
  const auth = blog.config?.auth ?? {};
  return {
    ...blog.config,
    auth: {
      ...auth,
      jwt: { secret: SECRET },
      guard: { enabled: guard },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
    },
  };
}

async function start(guard: boolean) {
  const server = serve({
    connection: { url: `file:${tempDb()}` },
    config: config(guard),
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
figures.push(await drive({ name: "guard off: list limit 20", url: `${off.server.url}/api/data/posts?limit=20` }));
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
const [base, authed] = figures;
console.log(`\nguard on / guard off (authenticated list): ${(authed!.rps / base!.rps).toFixed(2)}`);
