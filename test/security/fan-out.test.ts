/** §2.3: no input reaches a database limit — a reference route over a many-to-many relation with more links than SQLite binds. */
import { em, entity, relation, text } from "citadel";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

const LINKS = 40_000; // past SQLite's 32,766 bound variables per statement
const schema = em(
  { posts: entity("posts", { title: text() }), tags: entity("tags", { name: text() }) },
  ({ posts, tags }) => [relation(posts, "tags").manyToMany(tags)],
);

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ data: schema.toJSON() });
  const db = server.app.db;
  await db.transaction().execute(async (trx) => {
    await sql`insert into tags (name, created_at, updated_at) values ('busy', '', '')`.execute(trx);
    await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${LINKS})
      insert into posts (title, created_at, updated_at) select 'p' || i, '', '' from n`.execute(trx);
    await sql`insert into posts_tags (posts_id, tags_id) select id, 1 from posts`.execute(trx);
  });
});
afterAll(() => server.close());

describe("fan-out (2.3)", () => {
  it("a tag linked to 40,000 posts lists them page by page, never a 500 (2.3)", async () => {
    const res = await server.request("GET", "/api/data/tags/1/posts?limit=5&sort=id");
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((p: { id: number }) => p.id)).toEqual([1, 2, 3, 4, 5]);
    expect(res.body.meta.total).toBe(LINKS);
  });
});
