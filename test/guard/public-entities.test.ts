/** §9 Steps 3, 4 and 8: public entities, public read with authenticated write (§4.2, §4.3, §4.5, §4.9, §3.6). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import step3 from "../../examples/access/step3-one-public-entity.js";
import step4 from "../../examples/access/step4-several-public-entities.js";
import step8 from "../../examples/access/step8-public-read-auth-write.js";
import { ANON, type Booted, boot, dbRows, insert, type Scenario, scenarios } from "./helpers.js";

const R = "data.entity.read";

describe("Step 3: one public entity", () => {
  let b: Booted<{ post: number; comment: number }>;
  beforeAll(async () => {
    b = await boot(step3, {
      users: { user: "user" },
      rows: async (ctx) => {
        const [post] = await insert(ctx, "posts", [{ title: "Public post", status: "published" }]);
        const [comment] = await insert(ctx, "comments", [{ body: "private remark", post_id: post!.id }]);
        return { post: post!.id, comment: comment!.id };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  type S = Scenario<{ post: number; comment: number }>;
  const anonDenied = (name: string, req: S["req"], entity: string): S => ({
    name,
    as: ANON,
    req,
    status: 403,
    forbidden: [R, entity],
    notExpected: ["private remark", "user@test.com"],
  });
  scenarios(
    () => b,
    [
      { name: "Step 3: GET /api/data/posts is public", as: ANON, req: "GET /api/data/posts", status: 200 },
      anonDenied("Step 3: GET /api/data/users requires auth (403)", "GET /api/data/users", "users"),
      anonDenied("Step 3: GET /api/data/comments requires auth (403)", "GET /api/data/comments", "comments"),
      anonDenied(
        "Step 3: anonymous reading one comment is 403 (4.3)",
        (b) => `GET /api/data/comments/${b.rows.comment}`,
        "comments",
      ),
      anonDenied("Step 3: anonymous count of comments is 403 (4.5)", "GET /api/data/comments/count", "comments"),
      anonDenied(
        "Step 3: a public post's comments are 403 for anonymous (4.5)",
        (b) => `GET /api/data/posts/${b.rows.post}/comments`,
        "comments",
      ),
      {
        name: "Step 3: a user reads posts",
        as: "user",
        req: "GET /api/data/posts",
        status: 200,
        expected: { meta: { total: 1 } },
      },
      {
        name: "Step 3: a user reads users",
        as: "user",
        req: "GET /api/data/users",
        status: 200,
        expected: { meta: { total: 1 } },
      },
      {
        name: "Step 3: a user reads comments",
        as: "user",
        req: "GET /api/data/comments",
        status: 200,
        expected: { data: [{ body: "private remark" }] },
      },
    ],
  );

  it("Step 3: with=comments on a public post omits the comments for anonymous callers (4.5)", async () => {
    const anon = await b.as(ANON, "GET", "/api/data/posts?with=comments");
    expect(anon.status, anon.text).toBe(200);
    expect(anon.body.data).toHaveLength(1);
    expect(anon.body.data[0]).not.toHaveProperty("comments");
    expect(anon.text).not.toContain("private remark");
    const user = await b.as("user", "GET", "/api/data/posts?with=comments");
    expect(user.body.data[0].comments).toMatchObject([{ body: "private remark" }]);
  });
});

describe("Step 4: several public entities", () => {
  let b: Booted<undefined>;
  beforeAll(async () => {
    b = await boot(step4, {
      rows: async (ctx) => {
        for (const entity of ["categories", "tags", "products"]) await insert(ctx, entity, [{ name: `${entity} row` }]);
        await insert(ctx, "posts", [{ title: "post row" }]);
        await insert(ctx, "comments", [{ body: "comment row" }]);
        return undefined;
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const open = ["posts", "categories", "tags"];
  const closed = ["comments", "products", "users"];
  scenarios(
    () => b,
    [
      ...open.map((e) => ({
        name: `Step 4: anonymous reads ${e}`,
        as: ANON,
        req: `GET /api/data/${e}`,
        status: 200,
        expected: { meta: { total: 1 } },
      })),
      ...closed.map((e) => ({
        name: `Step 4: anonymous cannot read ${e} (403)`,
        as: ANON,
        req: `GET /api/data/${e}`,
        status: 403,
        forbidden: [R, e] as [string, string],
        notExpected: [`${e.slice(0, -1)} row`],
      })),
      ...open.map((e) => ({
        name: `Step 4: anonymous cannot create ${e} (403)`,
        as: ANON,
        req: `POST /api/data/${e}`,
        body: { name: "x", title: "x" },
        status: 403,
        forbidden: ["data.entity.create", e] as [string, string],
      })),
    ],
  );
});

describe("Step 8: public read, authenticated write", () => {
  let b: Booted<{ posts: number[] }>;
  beforeAll(async () => {
    b = await boot(step8, {
      users: { api: "api_user", victim: "api_user" },
      rows: async (ctx) => ({
        posts: (await insert(ctx, "posts", [{ title: "a" }, { title: "b" }, { title: "c" }])).map((r) => r.id),
      }),
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const first = (b: Booted<{ posts: number[] }>) => `/api/data/posts/${b.rows.posts[0]}`;
  scenarios(
    () => b,
    [
      ...["posts", "comments", "products", "users"].map((e) => ({
        name: `Step 8: anonymous reads ${e}`,
        as: ANON,
        req: `GET /api/data/${e}`,
        status: 200,
        notExpected: ["password_hash", "$argon2"],
      })),
      {
        name: "Step 8: anonymous create is 403",
        as: ANON,
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.create", "posts"],
      },
      {
        name: "Step 8: anonymous update is 403",
        as: ANON,
        req: (b) => `PATCH ${first(b)}`,
        body: { title: "x" },
        status: 403,
        forbidden: ["data.entity.update", "posts"],
      },
      {
        name: "Step 8: anonymous delete is 403",
        as: ANON,
        req: (b) => `DELETE ${first(b)}`,
        status: 403,
        forbidden: ["data.entity.delete", "posts"],
      },
      {
        name: "Step 8: a garbage token on a write is 401, not 403 (4.1, 4.9)",
        as: "garbage.token.here",
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 401,
        expected: { error: { code: "unauthorized" } },
      },
      {
        name: "Step 8: api_user creates (201)",
        as: "api",
        req: "POST /api/data/posts",
        body: { title: "new" },
        status: 201,
        expected: { data: { title: "new" } },
      },
      {
        name: "Step 8: api_user updates (200)",
        as: "api",
        req: (b) => `PATCH ${first(b)}`,
        body: { title: "A" },
        status: 200,
        expected: { data: { title: "A" } },
      },
      {
        name: "Step 8: api_user deletes one (200)",
        as: "api",
        req: (b) => `DELETE /api/data/posts/${b.rows.posts[1]}`,
        status: 200,
        expected: { data: { title: "b" } },
      },
      {
        name: "Step 8: api_user deletes many (200)",
        as: "api",
        req: "DELETE /api/data/posts",
        body: { title: "c" },
        status: 200,
        expected: { data: [{ title: "c" }] },
      },
      {
        name: "Step 8: api_user cannot change another user's role (3.6)",
        as: "api",
        req: (b) => `PATCH /api/data/users/${b.ids.victim}`,
        body: { role: "admin" },
        status: 403,
        forbidden: ["data.entity.update", "users"],
      },
      {
        name: "Step 8: api_user cannot change its own role (3.6)",
        as: "api",
        req: (b) => `PATCH /api/data/users/${b.ids.api}`,
        body: { role: "admin" },
        status: 403,
        forbidden: ["data.entity.update", "users"],
      },
    ],
  );

  it("Step 8: refused role changes leave every role as it was (3.6)", async () => {
    expect((await dbRows(b.server, "SELECT role FROM users ORDER BY id")).map((r) => r.role)).toEqual([
      "api_user",
      "api_user",
    ]);
    expect((await dbRows(b.server, "SELECT title FROM posts ORDER BY id")).map((r) => r.title)).toEqual(["A", "new"]);
  });
});
