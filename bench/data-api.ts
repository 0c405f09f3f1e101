/**
 * `npm run bench:data`: the blog example with 10,000 posts, driven over loopback: a filtered list (limit 20,
 * where on the indexed author_id), read one, and create; then the same list on a bare Hono + better-sqlite3
 * handler as the floor. The guard is off here (bench/guard.ts measures it).
 */
import { serve as honoServe } from "@hono/node-server";
import Database from "better-sqlite3";
import { serve } from "citadel/adapter/node";
import { Hono } from "hono";
import { schema } from "../examples/access/blog.js";
import { drive, type Figures, printTable, tempDb } from "./lib.js";

const POSTS = 10_000;
const AUTHORS = 50;

async function citadel(): Promise<{ figures: Figures[]; file: string }> {
  const file = tempDb();
  const server = serve({
    connection: { url: `file:${file}` },
    config: { data: schema.toJSON(), auth: { enabled: false } },
    port: 0,
    quiet: true,
  });
  await server.ready;
  const data = server.app!.module.data;
  await data.create(
    "users",
    Array.from({ length: AUTHORS }, (_, i) => ({ email: `author${i}@example.com` })),
  );
  for (let start = 0; start < POSTS; start += 1000)
    await data.create(
      "posts",
      Array.from({ length: 1000 }, (_, i) => ({
        title: `Post ${start + i}`,
        content: "lorem ipsum ".repeat(20),
        published: (start + i) % 2 === 0,
        author_id: ((start + i) % AUTHORS) + 1,
      })),
    );
  const where = encodeURIComponent(JSON.stringify({ author_id: 7 }));
  const figures = [
    await drive({
      name: "citadel list (limit 20, where author_id)",
      url: `${server.url}/api/data/posts?limit=20&where=${where}`,
    }),
    await drive({ name: "citadel read one", url: `${server.url}/api/data/posts/4242` }),
    await drive({
      name: "citadel create",
      url: `${server.url}/api/data/posts`,
      method: "POST",
      body: JSON.stringify({ title: "bench", content: "x", author_id: 3 }),
    }),
  ];
  await server.close();
  return { figures, file };
}

/** The floor: the same list query, hand-written, on the same database file. */
async function floor(file: string): Promise<Figures> {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  const list = db.prepare(
    "select id, title, content, published, created_at, updated_at, author_id from posts where author_id = ? order by id limit 20",
  );
  const count = db.prepare("select count(*) as n from posts where author_id = ?");
  const app = new Hono();
  app.get("/posts", (c) => {
    const author = Number(c.req.query("author_id"));
    return c.json({ data: list.all(author), meta: count.get(author) });
  });
  const server = await new Promise<ReturnType<typeof honoServe>>((resolve) => {
    const s = honoServe({ fetch: app.fetch, port: 0 }, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const figures = await drive({
    name: "floor: bare hono + better-sqlite3 list",
    url: `http://127.0.0.1:${port}/posts?author_id=7`,
  });
  server.close();
  db.close();
  return figures;
}

const { figures, file } = await citadel();
figures.push(await floor(file));
printTable(`data API, blog example, ${POSTS} posts`, figures);
