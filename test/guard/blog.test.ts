/** §9 "Blog Platform": filtered public reads through lists, `with` and reference routes; per-role writes (§4.2–4.6, §4.10). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import blog from "../../examples/access/blog.js";
import { bearer, register } from "../helpers/auth.js";
import {
  ANON,
  type Booted,
  boot,
  dbRows,
  emailOf,
  expectForbidden,
  expectNotFound,
  idsOf,
  insert,
  PASSWORD,
  type Row,
  scenarios,
  sorted,
} from "./helpers.js";

type Ids = Record<"p1" | "p2" | "p3" | "p4" | "c1" | "c2" | "c3" | "c4" | "c5", number>;

describe("Blog Platform", () => {
  let b: Booted<Ids>;
  beforeAll(async () => {
    b = await boot(blog, {
      users: { commenter: "commenter", author1: "author", author2: "author", admin: "admin" },
      rows: async (ctx, u) => {
        const [p1, p2, p3, p4] = await insert(ctx, "posts", [
          { title: "Hello blog", published: true, author_id: u.author1 },
          { title: "Unreleased draft", published: false, author_id: u.author1 },
          { title: "Second author", published: true, author_id: u.author2 },
          { title: "To delete", published: true, author_id: u.author2 },
        ]);
        const [c1, c2, c3, c4, c5] = await insert(ctx, "comments", [
          { body: "Nice post", approved: true, post_id: p1!.id, user_id: u.commenter },
          { body: "Spam link", approved: false, post_id: p1!.id },
          { body: "Great", approved: true, post_id: p3!.id },
          { body: "Early bird", approved: true, post_id: p2!.id },
          { body: "To moderate", approved: false, post_id: p3!.id },
        ]);
        const id = (r: Row | undefined) => r!.id as number;
        return {
          p1: id(p1),
          p2: id(p2),
          p3: id(p3),
          p4: id(p4),
          c1: id(c1),
          c2: id(c2),
          c3: id(c3),
          c4: id(c4),
          c5: id(c5),
        };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const get = async (who: string, path: string) => {
    const res = await b.as(who, "GET", path);
    expect(res.status, `${path}: ${res.text}`).toBe(200);
    return res;
  };
  const embedded = (res: { body: { data: Row[] } }, key: string) =>
    Object.fromEntries(res.body.data.map((r) => [r.id, (r[key] as Row[]).map((c) => c.id)]));

  it("Blog: anonymous sees only published posts (4.5)", async () => {
    const res = await get(ANON, "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([b.rows.p1, b.rows.p3, b.rows.p4]));
    expect(res.body.meta.total).toBe(3);
    expect(res.text).not.toContain("Unreleased");
  });

  it("Blog: anonymous sees only approved comments (4.5)", async () => {
    const res = await get(ANON, "/api/data/comments");
    expect(idsOf(res)).toEqual(sorted([b.rows.c1, b.rows.c3, b.rows.c4]));
    expect(res.body.meta.total).toBe(3);
    expect(res.text).not.toContain("Spam");
  });

  it("Blog: with=comments on posts embeds only approved comments for anonymous (4.5)", async () => {
    const anon = await get(ANON, "/api/data/posts?with=comments");
    expect(embedded(anon, "comments")).toEqual({ [b.rows.p1]: [b.rows.c1], [b.rows.p3]: [b.rows.c3], [b.rows.p4]: [] });
    expect(anon.text).not.toContain("Spam");
    const commenter = await get("commenter", `/api/data/posts/${b.rows.p1}?with=comments`);
    expect(commenter.body.data.comments.map((c: Row) => c.id)).toEqual([b.rows.c1, b.rows.c2]);
  });

  it("Blog: GET /api/data/posts/:id/comments omits unapproved comments for anonymous (4.5)", async () => {
    const anon = await get(ANON, `/api/data/posts/${b.rows.p1}/comments`);
    expect(idsOf(anon)).toEqual([b.rows.c1]);
    expect(anon.body.meta).toMatchObject({ count: 1, total: 1 });
    const commenter = await get("commenter", `/api/data/posts/${b.rows.p1}/comments`);
    expect(idsOf(commenter)).toEqual(sorted([b.rows.c1, b.rows.c2]));
  });

  it("Blog: an unpublished post, its comments and an unapproved comment are 404 for anonymous, like nonexistent ones (4.10)", async () => {
    const pairs = [
      [`/api/data/posts/${b.rows.p2}`, "/api/data/posts/999999"],
      [`/api/data/posts/${b.rows.p2}/comments`, "/api/data/posts/999999/comments"],
      [`/api/data/comments/${b.rows.c2}`, "/api/data/comments/999999"],
    ];
    for (const [hidden, missing] of pairs) {
      const h = await b.as(ANON, "GET", hidden!);
      expectNotFound(h);
      expect({ hidden, text: h.text }).toEqual({ hidden, text: (await b.as(ANON, "GET", missing!)).text });
    }
  });

  it("Blog: an approved comment on an unpublished post does not embed that post for anonymous (4.5)", async () => {
    const res = await get(ANON, `/api/data/comments/${b.rows.c4}?with=post`);
    expect(res.body.data.post ?? null).toBeNull();
    expect(res.text).not.toContain("Unreleased");
  });

  it("Blog: with=author embeds users only for roles that can read users (4.5)", async () => {
    const anon = await get(ANON, "/api/data/posts?with=author");
    for (const row of anon.body.data) expect(row).not.toHaveProperty("author");
    expect(anon.text).not.toContain("@test.com");
    const commenter = await get("commenter", `/api/data/posts/${b.rows.p1}?with=author`);
    expect(commenter.body.data.author).toMatchObject({ id: b.ids.author1, email: emailOf("author1") });
    expect(commenter.body.data.author).not.toHaveProperty("password_hash");
  });

  const C = "data.entity.create";
  const U = "data.entity.update";
  const D = "data.entity.delete";
  scenarios(
    () => b,
    [
      {
        name: "Blog: anonymous cannot comment (403)",
        as: ANON,
        req: "POST /api/data/comments",
        body: { body: "x" },
        status: 403,
        forbidden: [C, "comments"],
      },
      {
        name: "Blog: a commenter creates comments (201)",
        as: "commenter",
        req: "POST /api/data/comments",
        body: (b) => ({ body: "Me too", post_id: b.rows.p1 }),
        status: 201,
        expected: { data: { body: "Me too" } },
      },
      {
        name: "Blog: a commenter cannot create posts (403)",
        as: "commenter",
        req: "POST /api/data/posts",
        body: { title: "x" },
        status: 403,
        forbidden: [C, "posts"],
      },
      {
        name: "Blog: a commenter cannot update posts (403)",
        as: "commenter",
        req: (b) => `PATCH /api/data/posts/${b.rows.p1}`,
        body: { title: "x" },
        status: 403,
        forbidden: [U, "posts"],
      },
      {
        name: "Blog: a commenter cannot delete comments (403)",
        as: "commenter",
        req: (b) => `DELETE /api/data/comments/${b.rows.c1}`,
        status: 403,
        forbidden: [D, "comments"],
      },
      {
        name: "Blog: an author creates posts (201)",
        as: "author1",
        req: "POST /api/data/posts",
        body: { title: "New one" },
        status: 201,
        expected: { data: { title: "New one" } },
      },
      {
        name: "Blog: an author creates comments (201)",
        as: "author1",
        req: "POST /api/data/comments",
        body: { body: "Reply" },
        status: 201,
      },
      {
        name: "Blog: an author updates own posts (200)",
        as: "author1",
        req: (b) => `PATCH /api/data/posts/${b.rows.p1}`,
        body: { content: "more" },
        status: 200,
        expected: { data: { content: "more" } },
      },
      {
        name: "Blog: an author cannot update another author's post (403, no row data)",
        as: "author1",
        req: (b) => `PATCH /api/data/posts/${b.rows.p3}`,
        body: { title: "x" },
        status: 403,
        forbidden: [U, "posts"],
        notExpected: ["Second author"],
      },
      {
        name: "Blog: an author cannot update comments (403)",
        as: "author1",
        req: (b) => `PATCH /api/data/comments/${b.rows.c2}`,
        body: { approved: true },
        status: 403,
        forbidden: [U, "comments"],
      },
      {
        name: "Blog: an author cannot delete posts (403)",
        as: "author1",
        req: (b) => `DELETE /api/data/posts/${b.rows.p1}`,
        status: 403,
        forbidden: [D, "posts"],
      },
      {
        name: "Blog: write check: an author cannot hand a post to another author (4.6)",
        as: "author1",
        req: (b) => `PATCH /api/data/posts/${b.rows.p1}`,
        body: (b) => ({ author_id: b.ids.author2 }),
        status: 403,
        forbidden: [U, "posts"],
      },
      {
        name: "Blog: admin approves a comment (4.7)",
        as: "admin",
        req: (b) => `PATCH /api/data/comments/${b.rows.c5}`,
        body: { approved: true },
        status: 200,
        expected: { data: { approved: true } },
      },
      {
        name: "Blog: admin updates any post (4.7)",
        as: "admin",
        req: (b) => `PATCH /api/data/posts/${b.rows.p3}`,
        body: { content: "edited" },
        status: 200,
      },
      {
        name: "Blog: admin deletes a post (4.7)",
        as: "admin",
        req: (b) => `DELETE /api/data/posts/${b.rows.p4}`,
        status: 200,
      },
    ],
  );

  it("Blog: refused writes wrote nothing, admin's writes show to anonymous (4.6)", async () => {
    expect(await dbRows(b.server, "SELECT author_id, title FROM posts WHERE id = ?", b.rows.p1)).toEqual([
      { author_id: b.ids.author1, title: "Hello blog" },
    ]);
    expect(await dbRows(b.server, "SELECT approved FROM comments WHERE id = ?", b.rows.c2)).toEqual([{ approved: 0 }]);
    const comments = await get(ANON, `/api/data/posts/${b.rows.p3}/comments`);
    expect(idsOf(comments)).toEqual(sorted([b.rows.c3, b.rows.c5]));
  });

  it("Blog: a registered user is a commenter: comments yes, posts no (3.3)", async () => {
    const { token } = await register(b.server, "reader@test.com", PASSWORD);
    const as = (path: string, body: unknown) => b.server.request("POST", path, body, bearer(token));
    expect((await as("/api/data/comments", { body: "hi", post_id: b.rows.p1 })).status).toBe(201);
    expectForbidden(await as("/api/data/posts", { title: "nope" }), C, "posts");
  });
});
