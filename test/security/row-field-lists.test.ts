/**
 * §4.12 with §4.8 and §9.4: a field list (`fields`/`omit`) or field rules on a policy whose condition names the
 * row (`id`) restrict the fields of the rows that condition reaches, and only those, on every route: a list
 * shows a field on the other rows, `where`/`sort` on it see only the rows where it is readable (no oracle), a
 * write to many rows is refused when it would write it on one of them, and `explain` reports the rule as a
 * per-row field rule. Read-one and a write to one row treat each row exactly alike.
 */
import { em, entity, number, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows, guardedApp, insert, q } from "../guard/helpers.js";

const schema = em({
  posts: entity("posts", { title: text().required(), body: text(), rank: number({ integer: true }) }),
  notes: entity("notes", { title: text().required(), body: text() }),
});

const READ = "data.entity.read";
const UPDATE = "data.entity.update";
/** post 1 shows (and lets write) only its title; every other post is whole */
const onlyTitleOfPost1 = { condition: { entity: "posts", id: 1 }, effect: "allow" as const, fields: ["title"] };
const app = guardedApp(schema, {
  writer: {
    is_default: true,
    permissions: [
      READ,
      { permission: READ, policies: [onlyTitleOfPost1] },
      UPDATE,
      { permission: UPDATE, policies: [onlyTitleOfPost1] },
      {
        permission: READ,
        policies: [
          // a field rule on a policy conditioned on the row: `body` of note 2 only for a finance caller
          {
            condition: { entity: "notes", id: 2 },
            effect: "allow",
            fields: { body: { read: "user.department == 'finance'" } },
          },
        ],
      },
    ],
  },
  admin: { implicit_allow: true },
});

const BODIES = ["secret one", "body two", "body three"];
let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: { ada: "admin" },
    rows: async (ctx) => {
      await insert(
        ctx,
        "posts",
        BODIES.map((body, i) => ({ title: `post ${i + 1}`, body, rank: 3 - i })),
      );
      await insert(ctx, "notes", [
        { title: "note 1", body: "n1" },
        { title: "note 2", body: "n2" },
      ]);
    },
  });
});
afterAll(() => b.server.close());

type Res = { status: number; body: { data: { id: number; body?: string }[] } };
const ids = (res: Res) => res.body.data.map((r) => r.id);
const get = (path: string) => b.as(ANON, "GET", path) as Promise<Res & { text: string }>;

describe("a field list on a policy conditioned on id restricts only the rows it reaches (4.12, 4.8, 9.4)", () => {
  it("read-one: post 1 shows only its title, post 2 its body", async () => {
    const one = await get("/api/data/posts/1");
    expect(one.status).toBe(200);
    expect(Object.keys(one.body.data).sort()).toEqual(["id", "title"]);
    const two = await get("/api/data/posts/2");
    expect(two.body.data).toMatchObject({ id: 2, body: "body two", rank: 2 });
  });

  it("a list shows body on post 2 and hides it on post 1, as read-one does", async () => {
    const list = await get("/api/data/posts?sort=id");
    expect(list.status).toBe(200);
    expect(ids(list)).toEqual([1, 2, 3]);
    const [one, two, three] = list.body.data as Record<string, unknown>[];
    expect(Object.keys(one!).sort()).toEqual(["id", "title"]);
    expect(two).toMatchObject({ body: "body two", rank: 2 });
    expect(three).toMatchObject({ body: "body three", rank: 1 });
  });

  it("where on body sees only the rows where it is readable; count agrees", async () => {
    const eq = await get(`/api/data/posts?sort=id&where=${q({ body: "secret one" })}`);
    expect(eq.status).toBe(200);
    expect(ids(eq)).toEqual([]);
    expect(ids(await get(`/api/data/posts?sort=id&where=${q({ body: "body two" })}`))).toEqual([2]);
    expect(ids(await get(`/api/data/posts?sort=id&where=${q({ body: { $isnull: false } })}`))).toEqual([2, 3]);
    const count = await get(`/api/data/posts/count?where=${q({ body: { $like: "*one" } })}`);
    expect((count.body.data as unknown as { count: number }).count).toBe(0);
    // rank is hidden on post 1 too: its ordering there is no ranking oracle
    expect(ids(await get(`/api/data/posts?sort=id&where=${q({ rank: { $gte: 3 } })}`))).toEqual([]);
  });

  it("no oracle: changing post 1's hidden body and rank changes no where, sort or count answer", async () => {
    const probes = [
      `/api/data/posts?sort=body`,
      `/api/data/posts?sort=-body`,
      `/api/data/posts?sort=rank`,
      `/api/data/posts?sort=-rank`,
      ...["secret one", "other", "a", "z"].flatMap((v) => [
        `/api/data/posts?sort=id&where=${q({ body: v })}`,
        `/api/data/posts?sort=id&where=${q({ $not: { body: v } })}`,
        `/api/data/posts?sort=id&where=${q({ body: { $gt: v } })}`,
        `/api/data/posts/count?where=${q({ body: { $lt: v } })}`,
      ]),
      `/api/data/posts?sort=id&where=${q({ body: { $isnull: true } })}`,
      `/api/data/posts/count?where=${q({ $not: { body: { $isnull: false } } })}`,
    ];
    const ask = () => Promise.all(probes.map(async (p) => get(p).then((r) => [p, r.status, r.text])));
    const before = await ask();
    expect(before.filter(([, status]) => status !== 200)).toEqual([]);
    for (const [body, rank] of [
      ["a", -5],
      ["zzz", 99],
      [null, null],
    ] as const) {
      await b.server.rows("UPDATE posts SET body = ?, rank = ? WHERE id = 1", body, rank);
      expect(await ask()).toEqual(before);
    }
    await b.server.rows("UPDATE posts SET body = ?, rank = ? WHERE id = 1", BODIES[0], 3);
  });

  it("update-many writing body over posts 1 and 2 is refused and changes nothing", async () => {
    const res = await b.as(ANON, "PATCH", "/api/data/posts", {
      where: { id: { $in: [1, 2] } },
      update: { body: "overwritten" },
    });
    expect(res.status).toBe(403);
    expect(res.text).toContain("body");
    expect(res.text).not.toContain("secret one");
    expect(await dbRows(b.server, "SELECT id, body FROM posts ORDER BY id")).toEqual(
      BODIES.map((body, i) => ({ id: i + 1, body })),
    );
  });

  it("PATCH /posts/2 writes body; PATCH /posts/1 may write its title but not its body", async () => {
    const two = await b.as(ANON, "PATCH", "/api/data/posts/2", { body: "edited two" });
    expect(two.status).toBe(200);
    expect(two.body.data).toMatchObject({ id: 2, body: "edited two" });
    expect((await b.as(ANON, "PATCH", "/api/data/posts/1", { body: "edited one" })).status).toBe(403);
    const title = await b.as(ANON, "PATCH", "/api/data/posts/1", { title: "renamed" });
    expect(title.status).toBe(200);
    expect(Object.keys(title.body.data).sort()).toEqual(["id", "title"]);
    // a write to many rows that reaches only rows where body is writable goes through
    const many = await b.as(ANON, "PATCH", "/api/data/posts", {
      where: { id: { $in: [2, 3] } },
      update: { body: "b" },
    });
    expect(many.status).toBe(200);
    expect(await dbRows(b.server, "SELECT id, title, body FROM posts ORDER BY id")).toEqual([
      { id: 1, title: "renamed", body: "secret one" },
      { id: 2, title: "post 2", body: "b" },
      { id: 3, title: "post 3", body: "b" },
    ]);
  });

  it("explain reports the list's restriction as a per-row field rule, and read-one of post 1 as its fields (4.15)", async () => {
    const res = await b.as("ada", "GET", `/api/system/explain?role=writer&permission=${READ}&entity=posts`);
    expect(res.status).toBe(200);
    const explained = res.body.data;
    expect(explained.fields).toBeUndefined();
    expect(Object.keys(explained.row_fields).sort()).toEqual(["body", "created_at", "rank", "updated_at"]);
    expect(explained.row_fields.body).toMatch(/not .*"id" = /);
    const update = b.server.app.explain({ role: "writer", permission: UPDATE, entity: "posts" });
    expect(Object.keys(update.row_fields ?? {})).toContain("body");
    const one = b.server.app.explain({ role: "writer", permission: READ, entity: "posts", id: 1 });
    expect(one.fields?.sort()).toEqual(["id", "title"]);
    expect(one.row_fields).toBeUndefined();
    const two = b.server.app.explain({ role: "writer", permission: READ, entity: "posts", id: 2 });
    expect(two.fields).toBeUndefined();
    expect(two.row_fields).toBeUndefined();
  });

  it("field rules of a policy conditioned on id bind only the rows it reaches", async () => {
    const list = await get("/api/data/notes?sort=id");
    expect(list.body.data).toEqual([
      expect.objectContaining({ id: 1, body: "n1" }),
      expect.not.objectContaining({ body: expect.anything() }),
    ]);
    expect(ids(await get(`/api/data/notes?where=${q({ body: "n2" })}`))).toEqual([]);
    expect(ids(await get(`/api/data/notes?where=${q({ body: "n1" })}`))).toEqual([1]);
    expect((await get("/api/data/notes/1")).body.data).toMatchObject({ body: "n1" });
    expect((await get("/api/data/notes/2")).body.data).not.toHaveProperty("body");
  });
});
