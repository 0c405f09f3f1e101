/** §1.3 / §2 / §2.2: relation columns, `with` embedding (list and JSON forms) and reference routes. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, expectError, ids, q, type Seeded, seedBlog } from "./fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
type Row = any;

describe.each(ENGINE_DRIVERS)("data API relations (%s)", (driver) => {
  let server: TestServer;
  let s: Seeded;

  beforeAll(async () => {
    server = await startServer(config, { driver });
    s = await seedBlog(server);
  });
  afterAll(async () => {
    await server?.close();
  });

  const byId = (rows: Row[], id: number) => rows.find((r) => r.id === id);

  it("manyToOne adds a writable <name>_id column (1.3)", async () => {
    const res = await server.request("GET", `/api/data/posts/${s.posts.alpha}`);
    expect(res.body.data.author_id).toBe(s.users.a);
    const c = await server.request("GET", `/api/data/comments/${s.comments.c4}`);
    expect(c.body.data.post_id).toBe(s.posts.beta);
  });

  it("with=author,comments embeds one relation as object or null and many as an array (2.2)", async () => {
    const res = await server.request("GET", "/api/data/posts?with=author,comments");
    expect(res.status, res.text).toBe(200);
    const alpha = byId(res.body.data, s.posts.alpha);
    expect(alpha.author).toMatchObject({ id: s.users.a, email: "a@example.com" });
    expect(alpha.author).not.toHaveProperty("password_hash");
    expect(alpha.comments.map((c: Row) => c.id)).toEqual([s.comments.c1, s.comments.c2, s.comments.c3]);
    expect(alpha.comments[1]).toMatchObject({ body: "second", approved: true, post_id: s.posts.alpha });
    const gamma = byId(res.body.data, s.posts.gamma);
    expect(gamma.author).toBeNull();
    expect(gamma.comments).toEqual([]);
    const delta = byId(res.body.data, s.posts.delta);
    expect(delta.author.id).toBe(s.users.b);
  });

  it("with works on the single-row route (2)", async () => {
    const res = await server.request("GET", `/api/data/comments/${s.comments.c4}?with=post`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.post).toMatchObject({ id: s.posts.beta, title: "beta" });
  });

  it("with the inverse many relation users.posts (1.3)", async () => {
    const res = await server.request("GET", "/api/data/users?with=posts");
    expect(res.status, res.text).toBe(200);
    const a = byId(res.body.data, s.users.a);
    expect(a.posts.map((p: Row) => p.id)).toEqual([s.posts.alpha, s.posts.beta]);
    expect(byId(res.body.data, s.users.b).posts.map((p: Row) => p.id)).toEqual([s.posts.delta]);
  });

  it("with manyToMany through the junction table posts_tags (1.3)", async () => {
    const res = await server.request("GET", "/api/data/posts?with=tags");
    expect(res.status, res.text).toBe(200);
    const names = (id: number) =>
      byId(res.body.data, id)
        .tags.map((t: Row) => t.name)
        .sort();
    expect(names(s.posts.alpha)).toEqual(["news", "tech"]);
    expect(names(s.posts.beta)).toEqual(["tech"]);
    expect(names(s.posts.gamma)).toEqual([]);
    const tags = await server.request("GET", `/api/data/tags/${s.tags[1]}?with=posts`);
    expect(tags.body.data.posts.map((p: Row) => p.id).sort()).toEqual([s.posts.alpha, s.posts.beta].sort());
  });

  it("with JSON form: per-parent limit applies to many relations (2.2)", async () => {
    const res = await server.request("GET", `/api/data/posts?with=${q({ comments: { limit: 2 } })}`);
    expect(res.status, res.text).toBe(200);
    expect(byId(res.body.data, s.posts.alpha).comments.map((c: Row) => c.id)).toEqual([s.comments.c1, s.comments.c2]);
    expect(byId(res.body.data, s.posts.beta).comments.map((c: Row) => c.id)).toEqual([s.comments.c4]);
  });

  it("with JSON form: nested sort, limit and with (2.2)", async () => {
    const withJson = { comments: { limit: 1, sort: "-id", with: { post: {} } } };
    const res = await server.request("GET", `/api/data/posts?with=${q(withJson)}`);
    expect(res.status, res.text).toBe(200);
    const alpha = byId(res.body.data, s.posts.alpha);
    expect(alpha.comments).toHaveLength(1);
    expect(alpha.comments[0].id).toBe(s.comments.c3);
    expect(alpha.comments[0].post).toMatchObject({ id: s.posts.alpha, title: "Alpha" });
    expect(byId(res.body.data, s.posts.beta).comments[0].post.id).toBe(s.posts.beta);
  });

  it("with in the POST query body (2)", async () => {
    const res = await server.request("POST", "/api/data/posts/query", {
      where: { id: s.posts.alpha },
      with: { comments: { limit: 1 }, author: {} },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toHaveLength(1);
    expect(res.body.data[0].comments).toHaveLength(1);
    expect(res.body.data[0].author.id).toBe(s.users.a);
  });

  it("select and with combine: embedded relations stay on selected rows (2.2)", async () => {
    const res = await server.request("GET", `/api/data/posts/${s.posts.alpha}?select=id,title&with=author`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ id: s.posts.alpha, title: "Alpha", author: { id: s.users.a } });
    expect(res.body.data).not.toHaveProperty("content");
  });

  it("GET /:entity/:id/:relation lists related rows in the list envelope (2)", async () => {
    const res = await server.request("GET", `/api/data/posts/${s.posts.alpha}/comments`);
    expect(res.status, res.text).toBe(200);
    expect(ids(res)).toEqual([s.comments.c1, s.comments.c2, s.comments.c3]);
    expect(res.body.meta).toMatchObject({ items: 3, count: 3 });
    const none = await server.request("GET", `/api/data/posts/${s.posts.gamma}/comments`);
    expect(none.body.data).toEqual([]);
  });

  it("reference route for a one relation and for the inverse and m:n sides (2)", async () => {
    const author = await server.request("GET", `/api/data/posts/${s.posts.alpha}/author`);
    expect(author.status, author.text).toBe(200);
    expect(ids(author)).toEqual([s.users.a]);
    const posts = await server.request("GET", `/api/data/users/${s.users.a}/posts`);
    expect(ids(posts)).toEqual([s.posts.alpha, s.posts.beta]);
    const tags = await server.request("GET", `/api/data/posts/${s.posts.alpha}/tags`);
    expect(tags.body.data.map((t: Row) => t.name).sort()).toEqual(["news", "tech"]);
  });

  it("reference route of an unknown row is 404 (2)", async () => {
    const res = await server.request("GET", "/api/data/posts/99999/comments");
    expectError(res, 404, "not_found");
  });

  it("foreign key columns can be filtered, null included (1.3, 2.2)", async () => {
    const res = await server.request("GET", `/api/data/posts?where=${q({ author_id: null })}`);
    expect(ids(res)).toEqual([s.posts.gamma, s.posts.epsilon]);
    const a = await server.request("GET", `/api/data/posts?where=${q({ author_id: s.users.a })}`);
    expect(ids(a)).toEqual([s.posts.alpha, s.posts.beta]);
  });
});
