/** §1.3 / §2 / §2.1 / §2.4: create, read, update, delete (one and many), envelopes, system fields, 404s. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer, type TestServer } from "../helpers/server.js";
import { config, create, expectError, expectIso, expectValidation, ids, q } from "./fixtures.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(ENGINE_DRIVERS)("data API CRUD (%s)", (driver) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(config, { driver });
  });
  afterAll(async () => {
    await server?.close();
  });

  const countWhere = async (where: unknown) => {
    const res = await server.request("GET", `/api/data/posts/count?where=${q(where)}`);
    expect(res.status, res.text).toBe(200);
    return res.body.data.count as number;
  };

  it("create one answers 201 { data: row } with id, created_at, updated_at, defaults and nulls (1.3, 2)", async () => {
    const res = await server.request("POST", "/api/data/posts", { title: "Hello" });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body)).toEqual(["data"]);
    const row = res.body.data;
    expect(Number.isInteger(row.id)).toBe(true);
    expectIso(row.created_at);
    expectIso(row.updated_at);
    expect(row).toMatchObject({
      title: "Hello",
      content: null,
      views: null,
      status: "draft",
      published: false,
      meta: null,
      slug: null,
      author_id: null,
    });
  });

  it("values round-trip with their types: booleans, json, integers (2)", async () => {
    const meta = { tags: ["a", "b"], nested: { n: 1.5, ok: true }, none: null };
    const row = await create(server, "posts", {
      title: "Typed",
      published: true,
      status: "published",
      views: 42,
      meta,
      content: "text",
    });
    const res = await server.request("GET", `/api/data/posts/${row.id}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(["data"]);
    expect(res.body.data).toMatchObject({ title: "Typed", published: true, status: "published", views: 42, meta });
    expect(res.body.data.created_at).toBe(row.created_at);
  });

  it("create many (array) answers 201 { data: rows } (2)", async () => {
    const res = await server.request("POST", "/api/data/posts", [{ title: "m1" }, { title: "m2" }, { title: "m3" }]);
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.map((r: { title: string }) => r.title)).toEqual(["m1", "m2", "m3"]);
    for (const r of res.body.data) expect(Number.isInteger(r.id)).toBe(true);
    expect(new Set(ids(res)).size).toBe(3);
  });

  it.each(["id", "created_at", "updated_at"])("system field %s in a create body is 400 (2.4)", async (field) => {
    const value = field === "id" ? 999 : "2020-01-01T00:00:00.000Z";
    const res = await server.request("POST", "/api/data/posts", { title: `sys-${field}`, [field]: value });
    expectValidation(res, field);
    expect(await countWhere({ title: `sys-${field}` })).toBe(0);
  });

  it.each(["id", "created_at", "updated_at"])("system field %s in an update body is 400 (2.4)", async (field) => {
    const row = await create(server, "posts", { title: `sysu-${field}` });
    const value = field === "id" ? row.id + 1000 : "2020-01-01T00:00:00.000Z";
    const res = await server.request("PATCH", `/api/data/posts/${row.id}`, { [field]: value });
    expectValidation(res, field);
    const after = await server.request("GET", `/api/data/posts/${row.id}`);
    expect(after.body.data).toEqual(row);
  });

  it("update one answers { data: row }; updated_at changes, created_at does not (1.3, 2)", async () => {
    const row = await create(server, "posts", { title: "before", views: 1 });
    await sleep(25);
    const res = await server.request("PATCH", `/api/data/posts/${row.id}`, { title: "after", published: true });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ id: row.id, title: "after", views: 1, published: true });
    expect(res.body.data.created_at).toBe(row.created_at);
    expectIso(res.body.data.updated_at);
    expect(res.body.data.updated_at).not.toBe(row.updated_at);
    expect(Date.parse(res.body.data.updated_at)).toBeGreaterThan(Date.parse(row.updated_at));
    const read = await server.request("GET", `/api/data/posts/${row.id}`);
    expect(read.body.data).toEqual(res.body.data);
  });

  it("update can set optional fields and foreign keys to null (1.3, 2)", async () => {
    const user = await create(server, "users", { email: "fk@example.com" });
    const row = await create(server, "posts", { title: "fk", content: "x", author_id: user.id });
    expect(row.author_id).toBe(user.id);
    const res = await server.request("PATCH", `/api/data/posts/${row.id}`, { content: null, author_id: null });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ content: null, author_id: null });
  });

  it("update of a nonexistent id is 404 (2)", async () => {
    expectError(await server.request("PATCH", "/api/data/posts/987654", { title: "x" }), 404, "not_found");
    expectError(await server.request("PATCH", "/api/data/posts/abc", { title: "x" }), 404, "not_found");
  });

  it("unknown id and non-integer id are 404 (2)", async () => {
    expectError(await server.request("GET", "/api/data/posts/987654"), 404, "not_found");
    expectError(await server.request("GET", "/api/data/posts/abc"), 404, "not_found");
    expectError(await server.request("GET", "/api/data/posts/1.5"), 404, "not_found");
  });

  it("unknown entity is 404 on every route (2)", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/api/data/ghosts"],
      ["GET", "/api/data/ghosts/1"],
      ["GET", "/api/data/ghosts/count"],
      ["POST", "/api/data/ghosts", { title: "x" }],
      ["POST", "/api/data/ghosts/query", {}],
      ["PATCH", "/api/data/ghosts/1", { title: "x" }],
      ["DELETE", "/api/data/ghosts/1"],
    ];
    for (const [method, path, body] of routes) expectError(await server.request(method, path, body), 404, "not_found");
  });

  it("update many with { update, where } answers { data: rows } (2)", async () => {
    await create(server, "posts", [{ title: "bulk-1" }, { title: "bulk-2" }, { title: "other-bulk" }]);
    const res = await server.request("PATCH", "/api/data/posts", {
      update: { status: "published" },
      where: { title: { $like: "bulk-*" } },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((r: { title: string }) => r.title).sort()).toEqual(["bulk-1", "bulk-2"]);
    for (const r of res.body.data) expect(r.status).toBe("published");
    expect(await countWhere({ title: { $like: "*bulk*" }, status: "published" })).toBe(2);
  });

  it("update many with a missing or empty where is 400 and changes nothing (2)", async () => {
    await create(server, "posts", { title: "guarded-update" });
    for (const body of [{ update: { content: "all" } }, { update: { content: "all" }, where: {} }]) {
      expectError(await server.request("PATCH", "/api/data/posts", body), 400, "bad_request");
    }
    expect(await countWhere({ content: "all" })).toBe(0);
  });

  it("update many validates the update (2.4)", async () => {
    await create(server, "posts", { title: "vbulk" });
    const res = await server.request("PATCH", "/api/data/posts", { update: { views: -5 }, where: { title: "vbulk" } });
    expectValidation(res, "views");
  });

  it("delete one answers { data: row } with the deleted row; it is gone afterwards (2)", async () => {
    const row = await create(server, "posts", { title: "doomed" });
    const res = await server.request("DELETE", `/api/data/posts/${row.id}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual(row);
    expectError(await server.request("GET", `/api/data/posts/${row.id}`), 404, "not_found");
    expectError(await server.request("DELETE", `/api/data/posts/${row.id}`), 404, "not_found");
  });

  it("delete many takes the where as the body and answers { data: rows } (2)", async () => {
    await create(server, "posts", [{ title: "del-a" }, { title: "del-b" }, { title: "keep-del" }]);
    const res = await server.request("DELETE", "/api/data/posts", { title: { $like: "del-*" } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((r: { title: string }) => r.title).sort()).toEqual(["del-a", "del-b"]);
    expect(await countWhere({ title: { $like: "del-*" } })).toBe(0);
    expect(await countWhere({ title: "keep-del" })).toBe(1);
  });

  it("delete many with a missing or empty where is 400 and deletes nothing (2)", async () => {
    const before = await countWhere({ id: { $gt: 0 } });
    expect(before).toBeGreaterThan(0);
    expectError(await server.request("DELETE", "/api/data/posts"), 400, "bad_request");
    expectError(await server.request("DELETE", "/api/data/posts", {}), 400, "bad_request");
    expect(await countWhere({ id: { $gt: 0 } })).toBe(before);
  });

  it("deleting a user sets posts.author_id to null (on_delete set null) (1.3)", async () => {
    const user = await create(server, "users", { email: "gone@example.com" });
    const post = await create(server, "posts", { title: "orphan", author_id: user.id });
    expect((await server.request("DELETE", `/api/data/users/${user.id}`)).status).toBe(200);
    const res = await server.request("GET", `/api/data/posts/${post.id}`);
    expect(res.body.data.author_id).toBeNull();
  });
});
