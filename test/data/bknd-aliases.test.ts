/** §2: every route is also served under /api/data/entity/:entity/... with bknd's wire format. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, create, expectError, ids, q, type Seeded, seedBlog } from "./fixtures.js";

const E = "/api/data/entity";

describe.each(ENGINE_DRIVERS)("bknd-compatible data routes (%s)", (driver) => {
  let server: TestServer;
  let s: Seeded;

  beforeAll(async () => {
    server = await startServer(config, { driver });
    s = await seedBlog(server);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("GET /api/data/entity/:entity lists like the canonical route (2)", async () => {
    const alias = await server.request("GET", `${E}/posts?where=${q({ published: true })}&sort=-views`);
    expect(alias.status, alias.text).toBe(200);
    expect(ids(alias)).toEqual([s.posts.delta, s.posts.alpha]);
    expect(alias.body.meta).toMatchObject({ items: 2, count: 2, total: 5 });
    const canonical = await server.request("GET", `/api/data/posts?where=${q({ published: true })}&sort=-views`);
    expect(alias.body.data).toEqual(canonical.body.data);
  });

  it("repeated select keys select several fields (2)", async () => {
    const res = await server.request("GET", `${E}/posts?select=id&select=title&limit=2`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([
      { id: s.posts.alpha, title: "Alpha" },
      { id: s.posts.beta, title: "beta" },
    ]);
  });

  it("with as a JSON string (2)", async () => {
    const res = await server.request("GET", `${E}/posts?with=${q({ comments: { limit: 2 } })}`);
    expect(res.status, res.text).toBe(200);
    const alpha = res.body.data.find((p: { id: number }) => p.id === s.posts.alpha);
    expect(alpha.comments.map((c: { id: number }) => c.id)).toEqual([s.comments.c1, s.comments.c2]);
  });

  it("GET /api/data/entity/:entity/:id reads one row (2)", async () => {
    const res = await server.request("GET", `${E}/posts/${s.posts.beta}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ id: s.posts.beta, title: "beta", views: 5 });
    expectError(await server.request("GET", `${E}/posts/99999`), 404, "not_found");
  });

  it("POST /api/data/entity/:entity/query takes the query in the body (2)", async () => {
    const res = await server.request("POST", `${E}/posts/query`, {
      where: { views: { $gte: 10 } },
      sort: "views",
      select: ["id", "views"],
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([
      { id: s.posts.alpha, views: 10 },
      { id: s.posts.delta, views: 20 },
    ]);
  });

  it("POST .../fn/count answers { entity, count } (2)", async () => {
    const res = await server.request("POST", `${E}/posts/fn/count`, { published: false });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ entity: "posts", count: 3 });
    const all = await server.request("POST", `${E}/posts/fn/count`, {});
    expect(all.body).toEqual({ entity: "posts", count: 5 });
  });

  it("POST .../fn/exists answers { entity, exists } (2)", async () => {
    const yes = await server.request("POST", `${E}/posts/fn/exists`, { slug: "alpha" });
    expect(yes.status, yes.text).toBe(200);
    expect(yes.body).toEqual({ entity: "posts", exists: true });
    const no = await server.request("POST", `${E}/posts/fn/exists`, { slug: "zzz" });
    expect(no.body).toEqual({ entity: "posts", exists: false });
  });

  it("fn/count with a bad where is 400 (2.3)", async () => {
    const res = await server.request("POST", `${E}/posts/fn/count`, { nosuch: 1 });
    expectError(res, 400, "bad_request");
    expect(res.body.error.message).toContain("nosuch");
  });

  it("GET .../:id/:reference lists related rows (2)", async () => {
    const res = await server.request("GET", `${E}/posts/${s.posts.alpha}/comments`);
    expect(res.status, res.text).toBe(200);
    expect(ids(res)).toEqual([s.comments.c1, s.comments.c2, s.comments.c3]);
    const author = await server.request("GET", `${E}/posts/${s.posts.delta}/author`);
    expect(ids(author)).toEqual([s.users.b]);
  });

  it("POST, PATCH and DELETE one row under /api/data/entity (2)", async () => {
    const created = await server.request("POST", `${E}/tags`, { name: "alias-tag" });
    expect(created.status, created.text).toBe(201);
    const id = created.body.data.id;
    expect(created.body.data).toMatchObject({ name: "alias-tag" });
    const patched = await server.request("PATCH", `${E}/tags/${id}`, { name: "alias-renamed" });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.data).toMatchObject({ id, name: "alias-renamed" });
    const deleted = await server.request("DELETE", `${E}/tags/${id}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body.data).toMatchObject({ id, name: "alias-renamed" });
    expectError(await server.request("GET", `${E}/tags/${id}`), 404, "not_found");
  });

  it("POST an array under /api/data/entity creates many (2)", async () => {
    const res = await server.request("POST", `${E}/tags`, [{ name: "many-a" }, { name: "many-b" }]);
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.map((t: { name: string }) => t.name)).toEqual(["many-a", "many-b"]);
  });

  it("PATCH /api/data/entity/:entity with { update, where } updates many (2)", async () => {
    await create(server, "tags", [{ name: "pm-1" }, { name: "pm-2" }]);
    const res = await server.request("PATCH", `${E}/tags`, {
      update: { name: "pm-done" },
      where: { name: { $in: ["pm-1", "pm-2"] } },
    });
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body.data)).toBe(true);
    const check = await server.request("POST", `${E}/tags/fn/count`, { name: "pm-done" });
    expect(check.body.count).toBe(2);
    expectError(await server.request("PATCH", `${E}/tags`, { update: { name: "x" }, where: {} }), 400, "bad_request");
  });

  it("DELETE /api/data/entity/:entity with a where body deletes many (2)", async () => {
    await create(server, "tags", [{ name: "dm-1" }, { name: "dm-2" }, { name: "dm-keep" }]);
    const res = await server.request("DELETE", `${E}/tags`, { name: { $in: ["dm-1", "dm-2"] } });
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body.data)).toBe(true);
    const left = await server.request("POST", `${E}/tags/fn/count`, { name: { $like: "dm-*" } });
    expect(left.body.count).toBe(1);
    expectError(await server.request("DELETE", `${E}/tags`, {}), 400, "bad_request");
  });

  it("unknown entities are 404 under /api/data/entity too (2)", async () => {
    expectError(await server.request("GET", `${E}/ghosts`), 404, "not_found");
    expectError(await server.request("POST", `${E}/ghosts/fn/count`, {}), 404, "not_found");
  });
});
