/**
 * Bench helpers shared by bench/engines.ts and bench/load.ts: a database on each engine (a SQLite file, a
 * libSQL server, PostgreSQL, the servers started from npm packages by test/helpers/engines.ts) and the
 * guarded blog example (examples/access/blog.ts) served on it, seeded with authors and posts.
 */
import type { CitadelConfig } from "citadel";
import { type ServerHandle, serve } from "citadel/adapter/node";
import { blog } from "../examples/access/blog.js";
import { createDatabase, type Engine, startPostgres, startSqld } from "../test/helpers/engines.js";
import { tempDb } from "./lib.js";

export type { Engine };
export const ENGINE_NAMES: Engine[] = ["sqlite", "sqld", "postgres"];

export const SECRET = "bench-secret-that-is-at-least-32-bytes-long";
export const PASSWORD = "author-password";
export const authorEmail = (i: number) => `author${i}@example.com`;

export interface Database {
  engine: Engine;
  url: string;
  close(): Promise<void>;
}

/** A new, empty database on `engine`; `close` stops the server it started. */
export async function openDatabase(engine: Engine): Promise<Database> {
  if (engine === "sqlite") return { engine, url: `file:${tempDb()}`, close: async () => {} };
  if (engine === "sqld") {
    const sqld = await startSqld();
    return { engine, url: sqld.url, close: () => sqld.close() };
  }
  const postgres = await startPostgres();
  return { engine, url: await createDatabase(postgres.baseUrl, "bench"), close: () => postgres.close() };
}

export function engineOf(name: string | undefined): Engine {
  if ((ENGINE_NAMES as string[]).includes(name ?? "")) return name as Engine;
  throw new Error(`--engine must be one of ${ENGINE_NAMES.join(", ")}, not "${name}"`);
}

/** The blog example (guard on unless asked); cheap argon2 and login limits out of the way (benches log in many authors). */
export function benchConfig({ guard = true, audit = false }: { guard?: boolean; audit?: boolean } = {}): CitadelConfig {
  const auth = blog.config?.auth ?? {};
  return {
    ...blog.config,
    audit: { enabled: audit },
    auth: {
      ...auth,
      jwt: { secret: SECRET },
      guard: { enabled: guard },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
      rate_limit: { max_per_address: 1_000_000, max_per_email: 1_000_000 },
    },
  };
}

export interface Seed {
  authors: number;
  posts: number;
}

/**
 * Serve the blog on `url` (port 0). With `seed`, a new database gets `authors` author accounts and `posts`
 * posts (even ones published) spread over them; `log` receives the server's unexpected errors.
 */
export async function startBlog(
  url: string,
  opts: { seed?: Seed; log?: (message: string, error?: unknown) => void; poolMax?: number; audit?: boolean } = {},
): Promise<ServerHandle> {
  const { seed } = opts;
  const server = serve({
    connection: { url, ...(opts.poolMax ? { pool: { max: opts.poolMax } } : {}) },
    config: benchConfig({ audit: opts.audit }),
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
    options: {
      log: opts.log ?? ((message, error) => console.error(`citadel: ${message}`, error ?? "")),
      seed: seed
        ? async (ctx) => {
            const ids: unknown[] = [];
            for (let i = 0; i < seed.authors; i++) {
              const user = await ctx.app.module.auth.createUser({
                email: authorEmail(i),
                password: PASSWORD,
                role: "author",
              });
              ids.push(user.id);
            }
            for (let start = 0; start < seed.posts; start += 1000)
              await ctx.app.module.data.create(
                "posts",
                Array.from({ length: Math.min(1000, seed.posts - start) }, (_, i) => ({
                  title: `Post ${start + i}`,
                  content: "lorem ipsum ".repeat(20),
                  published: (start + i) % 2 === 0,
                  author_id: ids[(start + i) % ids.length],
                })),
              );
          }
        : undefined,
    },
  });
  await server.ready;
  return server;
}

/** Log in as author `i` through HTTP; returns the bearer token and the user's id. */
export async function loginAuthor(baseUrl: string, i: number): Promise<{ token: string; userId: number }> {
  const res = await fetch(`${baseUrl}/api/auth/password/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: authorEmail(i), password: PASSWORD }),
  });
  if (!res.ok) throw new Error(`login of ${authorEmail(i)}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token: string; user: { id: number } };
  return { token: body.token, userId: body.user.id };
}

/** The filtered list both benches drive: posts of three authors, newest first, limit 20 (anonymous: published only). */
export const FILTERED_LIST = `/api/data/posts?where=${encodeURIComponent(JSON.stringify({ author_id: { $in: [1, 2, 3] } }))}&sort=-id&limit=20`;
