/**
 * §4.12: conditions are three-valued and fail closed. A condition on `id` is a condition on the row, on every
 * route (list, count, exists, with, reference routes, writes to many rows), exactly as read-one treats it; a
 * condition on a claim the caller lacks is unknown: an unknown deny applies, an unknown allow does not.
 */
import { boolean as bool, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows, guardedApp, insert, q } from "../guard/helpers.js";

const schema = em(
  {
    posts: entity("posts", { title: text().required(), published: bool().default(false) }),
    comments: entity("comments", { body: text().required() }),
    users: entity("users", {}),
  },
  ({ posts, comments, users }) => [
    relation(comments, "post").manyToOne(posts),
    relation(posts, "author").manyToOne(users),
  ],
);

const READ = "data.entity.read";
const app = guardedApp(schema, {
  anonymous: {
    is_default: true,
    permissions: [
      {
        permission: READ,
        policies: [
          // post 1 is only readable while published; every other post is readable
          { condition: { entity: "posts", id: 1 }, effect: "filter", filter: { published: true } },
          { condition: { entity: "posts", id: { $ne: 1 } }, effect: "allow" },
          { condition: { entity: "comments" }, effect: "allow" },
        ],
      },
    ],
  },
  editor: {
    permissions: [
      READ,
      {
        permission: "data.entity.update",
        policies: [
          { condition: { entity: "posts", id: 1 }, effect: "filter", filter: { published: true } },
          { condition: { entity: "posts", id: { $ne: 1 } }, effect: "allow" },
        ],
      },
      {
        permission: "data.entity.delete",
        policies: [
          { condition: { entity: "posts" }, effect: "allow" },
          // deny on posts 2 and 3: only those rows leave the delete-many scope
          { condition: { entity: "posts", id: { $in: [2, 3] } }, effect: "deny" },
        ],
      },
    ],
  },
  staff: {
    permissions: [
      READ,
      // a deny conditioned on a claim the token lacks (no `department` claim) applies: fail closed
      { permission: READ, effect: "deny", policies: [{ condition: { "user.department": { $ne: "finance" } } }] },
    ],
  },
  clerk: {
    permissions: [
      // an allow conditioned on a missing claim does not apply
      { permission: READ, policies: [{ condition: { "user.department": "finance" }, effect: "allow" }] },
    ],
  },
});

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: { eve: "editor", sam: "staff", cleo: "clerk" },
    rows: async (ctx) => {
      await insert(ctx, "posts", [
        { title: "draft one", published: false },
        { title: "two", published: false },
        { title: "three", published: false },
        { title: "four", published: true },
      ]);
      await insert(ctx, "comments", [
        { body: "on draft", post_id: 1 },
        { body: "on two", post_id: 2 },
      ]);
    },
  });
});
afterAll(() => b.server.close());

const ids = (res: { body: { data: { id: number }[] } }) => res.body.data.map((r) => r.id);

describe("a condition on id is a condition on the row (4.12)", () => {
  it("read-one of the protected post is 404, and so it is absent from list, count and exists (4.12)", async () => {
    expect((await b.as(ANON, "GET", "/api/data/posts/1")).status).toBe(404);
    const list = await b.as(ANON, "GET", "/api/data/posts?sort=id");
    expect(ids(list)).toEqual([2, 3, 4]);
    expect(list.body.meta.total).toBe(3);
    expect((await b.as(ANON, "GET", `/api/data/posts/count?where=${q({ id: 1 })}`)).body.data.count).toBe(0);
    expect((await b.as(ANON, "GET", `/api/data/posts/exists?where=${q({ id: 1 })}`)).body.data.exists).toBe(false);
    expect((await b.as(ANON, "POST", "/api/data/posts/fn/count", { title: "draft one" })).body.count).toBe(0);
  });

  it("with and reference routes do not expand the protected post (4.12)", async () => {
    const comments = await b.as(ANON, "GET", "/api/data/comments?with=post&sort=id");
    expect(comments.body.data.map((c: { post: unknown }) => c.post)).toEqual([
      null,
      expect.objectContaining({ id: 2 }),
    ]);
    const ref = await b.as(ANON, "GET", "/api/data/comments/1/post");
    expect(ref.body.data).toEqual([]);
  });

  it("update-many with where {id: 1} leaves the row PATCH /posts/1 refuses (4.12)", async () => {
    expect((await b.as("eve", "PATCH", "/api/data/posts/1", { title: "pwned" })).status).toBe(403);
    const many = await b.as("eve", "PATCH", "/api/data/posts", { update: { title: "pwned" }, where: { id: 1 } });
    expect(many.status).toBe(200);
    expect(many.body.data).toEqual([]);
    expect(await dbRows(b.server, "SELECT title FROM posts WHERE id = 1")).toEqual([{ title: "draft one" }]);
  });

  it("a deny conditioned on id removes only those rows from a delete-many (4.12)", async () => {
    expect((await b.as("eve", "DELETE", "/api/data/posts/2")).status).toBe(403);
    const res = await b.as("eve", "DELETE", "/api/data/posts", { id: { $in: [2, 3] } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE id IN (2, 3) ORDER BY id")).toEqual([
      { id: 2 },
      { id: 3 },
    ]);
  });
});

describe("a condition on a missing claim is unknown (4.12)", () => {
  it("an unknown deny applies: a token without the claim is refused (4.12)", async () => {
    const res = await b.as("sam", "GET", "/api/data/posts");
    expect(res.status).toBe(403);
    expect((await b.as("sam", "GET", "/api/data/posts/4")).status).toBe(403);
  });

  it("an unknown allow does not apply (4.12)", async () => {
    expect((await b.as("cleo", "GET", "/api/data/posts")).status).toBe(403);
  });
});
