/**
 * `examples/blog` (what `npm start` serves): the docs' Blog Platform hardened with owners (§4.14), relational
 * filters (§4.13) and field rules (§4.8). Driven over HTTP as each kind of caller.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import blog from "../../examples/blog/config.js";
import { bearer, register } from "../helpers/auth.js";
import { ANON, type Booted, boot, dbRows, insert, q } from "./helpers.js";

type Ids = { published: number; draft: number; approved: number; pending: number };

let b: Booted<Ids>;
let reader: { token: string; id: number };
const as = (token: string, method: string, path: string, body?: unknown) =>
  b.server.request(method, path, body, bearer(token));

beforeAll(async () => {
  b = await boot(blog, {
    users: { alice: "author", bob: "author", mod: "moderator" },
    rows: async (ctx, u) => {
      const [published, draft] = await insert(ctx, "posts", [
        { title: "Hello", published: true, author_id: u.alice },
        { title: "Draft", published: false, author_id: u.alice },
      ]);
      const [approved, pending] = await insert(ctx, "comments", [
        { body: "first!", approved: true, post_id: published!.id },
        { body: "spam", approved: false, post_id: published!.id },
      ]);
      return { published: published!.id, draft: draft!.id, approved: approved!.id, pending: pending!.id };
    },
  });
  const registered = await register(b.server, "reader@test.com", "a long password");
  reader = { token: registered.token, id: registered.user.id as number };
});
afterAll(() => b.server.close());

const ids = (res: { status: number; text: string; body: { data: { id: number }[] } }) => {
  expect(res.status, res.text).toBe(200);
  return res.body.data.map((r) => r.id).sort((x, y) => x - y);
};

describe("examples/blog: public reads (4.5, 4.13)", () => {
  it("anonymous reads published posts and approved comments on them only", async () => {
    expect(ids(await b.as(ANON, "GET", "/api/data/posts"))).toEqual([b.rows.published]);
    expect(ids(await b.as(ANON, "GET", "/api/data/comments"))).toEqual([b.rows.approved]);
    expect((await b.as(ANON, "GET", `/api/data/posts/${b.rows.draft}`)).status).toBe(404);
  });

  it("users show their public name only: no email, no role, and filtering on them is 400 (4.8)", async () => {
    for (const who of [ANON, "bob"]) {
      const res = await b.as(who, "GET", "/api/data/users");
      expect(res.status).toBe(200);
      for (const row of res.body.data) expect(Object.keys(row).sort()).toEqual(["id", "name"]);
      expect(res.text).not.toContain("@test.com");
      expect((await b.as(who, "GET", `/api/data/users?where=${q({ email: "alice@test.com" })}`)).status).toBe(400);
    }
    const withAuthor = await b.as(ANON, "GET", "/api/data/posts?with=author");
    expect(withAuthor.body.data[0].author).toEqual({ id: b.ids.alice, name: null });
  });
});

describe("examples/blog: comments are owned by their writer (4.14)", () => {
  let mine: number;

  it("a commenter's comment is theirs, whatever the body says; a spoofed author is 403", async () => {
    const res = await as(reader.token, "POST", "/api/data/comments", { body: "Nice!", post_id: b.rows.published });
    expect(res.status, res.text).toBe(201);
    mine = res.body.data.id;
    expect(await dbRows(b.server, `SELECT author_id, approved FROM comments WHERE id = ${mine}`)).toEqual([
      { author_id: reader.id, approved: 0 },
    ]);
    const spoof = { body: "as alice", post_id: b.rows.published, author_id: b.ids.alice };
    expect((await as(reader.token, "POST", "/api/data/comments", spoof)).status).toBe(403);
  });

  it("a commenter cannot approve their own comment, nor comment on a draft (4.8, 4.13)", async () => {
    const approve = { body: "x", post_id: b.rows.published, approved: true };
    expect((await as(reader.token, "POST", "/api/data/comments", approve)).status).toBe(403);
    expect((await as(reader.token, "PATCH", `/api/data/comments/${mine}`, { approved: true })).status).toBe(403);
    const onDraft = await as(reader.token, "POST", "/api/data/comments", { body: "x", post_id: b.rows.draft });
    expect([403, 409]).toContain(onDraft.status);
    expect(await dbRows(b.server, "SELECT count(*) AS n FROM comments WHERE body = 'x'")).toEqual([{ n: 0 }]);
  });

  it("the writer sees their pending comment and edits it; others neither see nor edit it", async () => {
    expect(ids(await as(reader.token, "GET", "/api/data/comments"))).toContain(mine);
    expect(ids(await b.as(ANON, "GET", "/api/data/comments"))).not.toContain(mine);
    expect((await as(reader.token, "PATCH", `/api/data/comments/${mine}`, { body: "Nicer!" })).status).toBe(200);
    expect((await b.as("bob", "PATCH", `/api/data/comments/${mine}`, { body: "pwned" })).status).toBe(404);
    expect((await as(reader.token, "PATCH", `/api/data/comments/${b.rows.approved}`, { body: "pwned" })).status).toBe(
      403,
    );
  });

  it("a moderator approves it (and can write nothing else); then anonymous sees it", async () => {
    expect((await b.as("mod", "PATCH", `/api/data/comments/${mine}`, { body: "edited" })).status).toBe(403);
    expect((await b.as("mod", "PATCH", `/api/data/comments/${mine}`, { approved: true })).status).toBe(200);
    expect(ids(await b.as(ANON, "GET", "/api/data/comments"))).toContain(mine);
  });
});

describe("examples/blog: authors own their posts (4.14)", () => {
  it("an author's new post is theirs; another author can neither edit nor delete it", async () => {
    const res = await b.as("bob", "POST", "/api/data/posts", { title: "Bob's", published: true });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.author_id).toBe(b.ids.bob);
    const id = res.body.data.id;
    expect((await b.as("alice", "PATCH", `/api/data/posts/${id}`, { title: "pwned" })).status).toBe(403);
    expect((await b.as("alice", "DELETE", `/api/data/posts/${id}`)).status).toBe(403);
    expect((await b.as("bob", "PATCH", `/api/data/posts/${id}`, { title: "Bob's, edited" })).status).toBe(200);
    expect((await b.as("bob", "PATCH", `/api/data/posts/${id}`, { author_id: b.ids.alice })).status).toBe(403);
  });

  it("a commenter cannot write posts", async () => {
    expect((await as(reader.token, "POST", "/api/data/posts", { title: "x" })).status).toBe(403);
  });
});
