/** §9 Step 5 "public records with filter": filters enforced in SQL on every read path (§4.3a, §4.5, §4.10). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import step5 from "../../examples/access/step5-filtered-public-records.js";
import { ANON, type Booted, boot, expectForbidden, expectNotFound, idsOf, insert, q, sorted } from "./helpers.js";

interface Rows {
  pub: number[];
  drafts: number[];
  shown: number;
  hidden: number;
}

describe("Step 5: public records with a filter", () => {
  let b: Booted<Rows>;
  beforeAll(async () => {
    b = await boot(step5, {
      users: { user: "user" },
      rows: async (ctx) => {
        const posts = await insert(ctx, "posts", [
          { title: "Published one", status: "published" },
          { title: "Draft secret", status: "draft" },
          { title: "Published two", status: "published" },
          { title: "Draft secret two" },
        ]);
        const products = await insert(ctx, "products", [
          { name: "Shown product", visible: true },
          { name: "Hidden product", visible: false },
          { name: "Hidden product two" },
        ]);
        return {
          pub: [posts[0]!.id, posts[2]!.id],
          drafts: [posts[1]!.id, posts[3]!.id],
          shown: products[0]!.id,
          hidden: products[1]!.id,
        };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const list = async (who: string, path: string) => {
    const res = await b.as(who, "GET", path);
    expect(res.status, res.text).toBe(200);
    return res;
  };

  it("Step 5: anonymous lists only published posts; meta.count and meta.total count only them (4.5, 2.1)", async () => {
    const res = await list(ANON, "/api/data/posts");
    expect(idsOf(res)).toEqual(b.rows.pub);
    expect(res.body.meta).toMatchObject({ items: 2, count: 2, total: 2 });
    expect(res.text).not.toContain("Draft secret");
  });

  it("Step 5: anonymous lists only visible products (4.5)", async () => {
    const res = await list(ANON, "/api/data/products");
    expect(idsOf(res)).toEqual([b.rows.shown]);
    expect(res.body.meta).toMatchObject({ count: 1, total: 1 });
    expect(res.text).not.toContain("Hidden");
  });

  it("Step 5: the caller's where, select and sort cannot widen or count hidden rows (4.3a, 4.5)", async () => {
    const cases: [where: unknown, expected: number[]][] = [
      [{ status: "draft" }, []],
      [{ $or: [{ status: "draft" }, { id: { $gt: 0 } }] }, b.rows.pub],
      [{ $not: { status: "published" } }, []],
      [{ id: { $in: [...b.rows.drafts, ...b.rows.pub] } }, b.rows.pub],
      [{ $or: [{ title: { $like: "Draft*" } }, { $not: { $and: [{ id: { $gt: 0 } }] } }] }, []],
    ];
    for (const [where, expected] of cases) {
      const res = await list(ANON, `/api/data/posts?where=${q(where)}&select=id,status&sort=-status`);
      expect({ where, ids: idsOf(res), count: res.body.meta.count, total: res.body.meta.total }).toEqual({
        where,
        ids: sorted(expected),
        count: expected.length,
        total: 2,
      });
      const body = await b.as(ANON, "POST", "/api/data/posts/query", { where });
      expect({ where, ids: idsOf(body) }).toEqual({ where, ids: sorted(expected) });
    }
  });

  it("Step 5: count and exists see only visible rows, on both route styles (4.5)", async () => {
    const draft = b.rows.drafts[0];
    const get = async (path: string) => (await list(ANON, path)).body.data;
    expect(await get("/api/data/posts/count")).toEqual({ count: 2 });
    expect(await get(`/api/data/posts/count?where=${q({ status: "draft" })}`)).toEqual({ count: 0 });
    expect(await get(`/api/data/posts/exists?where=${q({ id: draft })}`)).toEqual({ exists: false });
    expect(await get(`/api/data/posts/exists?where=${q({ id: b.rows.pub[0] })}`)).toEqual({ exists: true });
    const fnCount = await b.as(ANON, "POST", "/api/data/entity/posts/fn/count", { status: "draft" });
    expect(fnCount.body).toEqual({ entity: "posts", count: 0 });
    const fnExists = await b.as(ANON, "POST", "/api/data/entity/posts/fn/exists", { id: draft });
    expect(fnExists.body).toEqual({ entity: "posts", exists: false });
  });

  it("Step 5: a draft post or hidden product by id is 404, byte-identical to a nonexistent id (4.5, 4.10)", async () => {
    const pairs = [
      [`/api/data/posts/${b.rows.drafts[0]}`, "/api/data/posts/999999"],
      [`/api/data/entity/posts/${b.rows.drafts[1]}`, "/api/data/entity/posts/999999"],
      [`/api/data/products/${b.rows.hidden}`, "/api/data/products/999999"],
      [`/api/data/posts/${b.rows.drafts[0]}/comments`, "/api/data/posts/999999/comments"],
    ];
    for (const [hidden, missing] of pairs) {
      const [h, m] = [await b.as(ANON, "GET", hidden!), await b.as(ANON, "GET", missing!)];
      expectNotFound(h);
      expect({ hidden, text: h.text, headers: h.headers.get("content-type") }).toEqual({
        hidden,
        text: m.text,
        headers: m.headers.get("content-type"),
      });
    }
  });

  it("Step 5: entities without a matching policy are 403 for anonymous (4.3)", async () => {
    expectForbidden(await b.as(ANON, "GET", "/api/data/comments"), "data.entity.read", "comments");
    expectForbidden(await b.as(ANON, "GET", "/api/data/users"), "data.entity.read", "users");
  });

  it("Step 5: an authenticated user sees drafts and hidden products too", async () => {
    const posts = await list("user", "/api/data/posts");
    expect(idsOf(posts)).toEqual(sorted([...b.rows.pub, ...b.rows.drafts]));
    expect(posts.body.meta).toMatchObject({ count: 4, total: 4 });
    const draft = await list("user", `/api/data/posts/${b.rows.drafts[0]}`);
    expect(draft.body.data).toMatchObject({ title: "Draft secret", status: "draft" });
    expect((await list("user", "/api/data/products")).body.meta.total).toBe(3);
    expect((await list("user", `/api/data/posts/count?where=${q({ status: "draft" })}`)).body.data.count).toBe(2);
  });
});
