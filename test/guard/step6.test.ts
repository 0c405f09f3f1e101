/** §9 Step 6 "mixed public/owner access": owner filters on read and update, the write check, no oracles (§4.3a–4.6, §4.10). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import step6 from "../../examples/access/step6-public-and-owner.js";
import {
  ANON,
  type Booted,
  boot,
  dbRows,
  expectForbidden,
  expectNotFound,
  idsOf,
  insert,
  q,
  sorted,
} from "./helpers.js";

interface Rows {
  pubA: number;
  draftA: number;
  pubB: number;
  draftB: number;
}

describe("Step 6: public and owner access", () => {
  let b: Booted<Rows>;
  const authors = () => dbRows(b.server, "SELECT id, author_id, title, content FROM posts ORDER BY id");
  beforeAll(async () => {
    b = await boot(step6, {
      users: { a: "user", b: "user" },
      rows: async (ctx, ids) => {
        const [pubA, draftA, pubB, draftB] = await insert(ctx, "posts", [
          { title: "A public", status: "published", author_id: ids.a },
          { title: "A draft", status: "draft", author_id: ids.a },
          { title: "B public", status: "published", author_id: ids.b },
          { title: "B secret draft", status: "draft", author_id: ids.b },
        ]);
        return { pubA: pubA!.id, draftA: draftA!.id, pubB: pubB!.id, draftB: draftB!.id };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const ok = async (who: string, method: string, path: string, body?: unknown) => {
    const res = await b.as(who, method, path, body);
    expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
    return res;
  };

  it("Step 6: anonymous sees only published posts (4.5)", async () => {
    const res = await ok(ANON, "GET", "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([b.rows.pubA, b.rows.pubB]));
    expect(res.body.meta).toMatchObject({ count: 2, total: 2 });
  });

  it("Step 6: user A sees published posts and own drafts, never B's drafts (4.5)", async () => {
    const res = await ok("a", "GET", "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([b.rows.pubA, b.rows.draftA, b.rows.pubB]));
    expect(res.body.meta).toMatchObject({ count: 3, total: 3 });
    expect(res.text).not.toContain("B secret");
    expect((await ok("b", "GET", `/api/data/posts/${b.rows.draftB}`)).body.data.title).toBe("B secret draft");
  });

  it("Step 6: another user's draft by id is 404, byte-identical to a nonexistent id (4.5, 4.10)", async () => {
    for (const [who, hidden] of [
      ["a", b.rows.draftB],
      [ANON, b.rows.draftA],
    ] as const) {
      const h = await b.as(who, "GET", `/api/data/posts/${hidden}`);
      const m = await b.as(who, "GET", "/api/data/posts/999999");
      expectNotFound(h);
      expect(h.text).toBe(m.text);
    }
  });

  it("Step 6: $or, $not, $in and nested combinators in A's where never widen (4.3a)", async () => {
    const { pubA, draftA, pubB, draftB } = b.rows;
    const cases: [where: unknown, expected: number[]][] = [
      [{ $or: [{ status: "draft" }, { id: { $gt: 0 } }] }, [pubA, draftA, pubB]],
      [{ status: "draft" }, [draftA]],
      [{ $not: { author_id: b.ids.a } }, [pubB]],
      [{ author_id: b.ids.b }, [pubB]],
      [{ id: { $in: [draftB, draftA] } }, [draftA]],
      [{ $or: [{ author_id: { $isnull: true } }, { author_id: { $ne: b.ids.a } }] }, [pubB]],
      [{ $or: [{ $and: [{ status: "draft" }, { author_id: b.ids.b }] }, { $not: { id: { $gt: 0 } } }] }, []],
    ];
    for (const [where, expected] of cases) {
      const res = await ok("a", "GET", `/api/data/posts?where=${q(where)}`);
      const got = { where, ids: idsOf(res), count: res.body.meta.count, total: res.body.meta.total };
      expect(got).toEqual({ where, ids: sorted(expected), count: expected.length, total: 3 });
      const count = await ok("a", "GET", `/api/data/posts/count?where=${q(where)}`);
      expect({ where, count: count.body.data.count }).toEqual({ where, count: expected.length });
      const query = await ok("a", "POST", "/api/data/entity/posts/query", { where });
      expect({ where, ids: idsOf(query) }).toEqual({ where, ids: sorted(expected) });
    }
  });

  it("Step 6: count and exists see only visible rows (4.5)", async () => {
    expect((await ok("a", "GET", "/api/data/posts/count")).body.data).toEqual({ count: 3 });
    const exists = (where: unknown) => ok("a", "GET", `/api/data/posts/exists?where=${q(where)}`);
    expect((await exists({ id: b.rows.draftB })).body.data).toEqual({ exists: false });
    expect((await exists({ id: b.rows.draftA })).body.data).toEqual({ exists: true });
    const fn = await ok("a", "POST", "/api/data/entity/posts/fn/exists", { title: "B secret draft" });
    expect(fn.body).toEqual({ entity: "posts", exists: false });
  });

  it("Step 6: user A updates own post (200)", async () => {
    const res = await ok("a", "PATCH", `/api/data/posts/${b.rows.draftA}`, { title: "A draft edited" });
    expect(res.body.data).toMatchObject({ id: b.rows.draftA, title: "A draft edited" });
  });

  it("Step 6: A updating B's published post is 403 (readable, outside the update filter) and writes nothing (4.5, 4.9)", async () => {
    const before = await authors();
    const res = await b.as("a", "PATCH", `/api/data/posts/${b.rows.pubB}`, { title: "hijacked" });
    expectForbidden(res, "data.entity.update", "posts");
    expect(res.text).not.toContain("B public");
    expect(await authors()).toEqual(before);
  });

  it("Step 6: A updating B's draft is 404, byte-identical to a nonexistent id, and writes nothing (4.5, 4.10)", async () => {
    const before = await authors();
    const hidden = await b.as("a", "PATCH", `/api/data/posts/${b.rows.draftB}`, { title: "hijacked" });
    const missing = await b.as("a", "PATCH", "/api/data/posts/999999", { title: "hijacked" });
    expectNotFound(hidden);
    expect(hidden.text).toBe(missing.text);
    expect(await authors()).toEqual(before);
  });

  it("Step 6: write check: A cannot hand own post to B (author_id = B): 403, nothing written (4.6)", async () => {
    const before = await authors();
    const res = await b.as("a", "PATCH", `/api/data/posts/${b.rows.draftA}`, { title: "moved", author_id: b.ids.b });
    expectForbidden(res, "data.entity.update", "posts");
    expect(await authors()).toEqual(before);
    expect(idsOf(await ok("a", "GET", "/api/data/posts"))).toContain(b.rows.draftA);
  });

  it("Step 6: write check on update many: setting author_id = B is 403 and nothing is written (4.6)", async () => {
    const before = await authors();
    const body = { update: { author_id: b.ids.b }, where: { id: { $gt: 0 } } };
    expectForbidden(await b.as("a", "PATCH", "/api/data/posts", body), "data.entity.update", "posts");
    expect(await authors()).toEqual(before);
  });

  it("Step 6: update many with a where matching everything reaches only A's own rows (4.5)", async () => {
    const res = await ok("a", "PATCH", "/api/data/posts", { update: { content: "bulk" }, where: { id: { $gt: 0 } } });
    expect(idsOf(res)).toEqual(sorted([b.rows.pubA, b.rows.draftA]));
    const contents = Object.fromEntries((await authors()).map((r) => [r.id, r.content]));
    expect(contents).toEqual({
      [b.rows.pubA]: "bulk",
      [b.rows.draftA]: "bulk",
      [b.rows.pubB]: null,
      [b.rows.draftB]: null,
    });
  });

  it("Step 6: create has no filter, but A cannot read users: a post credited to B answers like one credited to a missing user, her own is written (4.6, 4.17)", async () => {
    const before = await authors();
    const hidden = await b.as("a", "POST", "/api/data/posts", {
      title: "gift",
      status: "published",
      author_id: b.ids.b,
    });
    const missing = await b.as("a", "POST", "/api/data/posts", {
      title: "gift",
      status: "published",
      author_id: 999999,
    });
    expect(hidden.status, hidden.text).toBe(409);
    expect(hidden.text).toBe(missing.text);
    expect(await authors()).toEqual(before);
    const own = await b.as("a", "POST", "/api/data/posts", { title: "own draft", author_id: b.ids.a });
    expect(own.status, own.text).toBe(201);
    expect(own.body.data).toMatchObject({ title: "own draft", status: "draft", author_id: b.ids.a });
    const anonymous = await b.as("a", "POST", "/api/data/posts", { title: "unsigned" });
    expect(anonymous.status, anonymous.text).toBe(201);
    expect(anonymous.body.data).toEqual({ id: expect.any(Number) });
  });

  it("Step 6: user A cannot delete: the same 403 for a hidden and a nonexistent row (4.9, 4.10)", async () => {
    const hidden = await b.as("a", "DELETE", `/api/data/posts/${b.rows.draftB}`);
    expectForbidden(hidden, "data.entity.delete", "posts");
    expect(hidden.text).toBe((await b.as("a", "DELETE", "/api/data/posts/999999")).text);
    expectForbidden(
      await b.as(ANON, "PATCH", `/api/data/posts/${b.rows.pubA}`, { title: "x" }),
      "data.entity.update",
      "posts",
    );
  });

  it("Step 6: the user's read policy names only posts: other entities are 403 and with=author is omitted (4.3, 4.5)", async () => {
    expectForbidden(await b.as("a", "GET", "/api/data/comments"), "data.entity.read", "comments");
    expectForbidden(await b.as("a", "GET", "/api/data/users"), "data.entity.read", "users");
    const res = await ok("a", "GET", `/api/data/posts/${b.rows.pubA}?with=author`);
    expect(res.body.data.id).toBe(b.rows.pubA);
    expect(res.body.data).not.toHaveProperty("author");
    expect(res.text).not.toContain("@test.com");
  });
});
