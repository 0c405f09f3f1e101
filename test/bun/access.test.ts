/**
 * The docs' access steps (§9 Steps 1, 5, 6) served by Bun (§11.3): citadel/adapter/bun on bun:sqlite, driven
 * over HTTP. The full tables are in test/guard; these are the checks that show the guard works the same there.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectForbidden, expectNotFound, idsOf, q, sorted } from "../guard/helpers.js";
import { emailOf, PASSWORD } from "./apps.js";
import { ANON, type BunServer, loginAs, startBunServer } from "./bun-server.js";

/** A server for `app` and a token per seeded user. */
function boot(app: string) {
  const booted = { server: undefined as unknown as BunServer, tokens: {} as Record<string, string> };
  beforeAll(async () => {
    booted.server = await startBunServer(app);
    for (const name of Object.keys(booted.server.users))
      booted.tokens[name] = await loginAs(booted.server, emailOf(name), PASSWORD);
  });
  afterAll(async () => {
    await booted.server?.close();
  });
  return booted;
}

describe("Step 1 on Bun: fully public (read-only)", () => {
  const b = boot("step1");

  it("Step 1: anonymous lists and reads posts without auth (4.5)", async () => {
    const list = await b.server.as(ANON, "GET", "/api/data/posts");
    expect(list.status, list.text).toBe(200);
    expect(list.body.meta).toMatchObject({ total: 2 });
    const one = await b.server.as(ANON, "GET", `/api/data/posts/${b.server.rows.hello}`);
    expect(one.body.data).toMatchObject({ title: "Hello" });
  });

  it("Step 1: anonymous create and update are 403 naming permission and entity, without row data (4.9)", async () => {
    expectForbidden(await b.server.as(ANON, "POST", "/api/data/posts", { title: "x" }), "data.entity.create", "posts");
    const update = await b.server.as(ANON, "PATCH", `/api/data/posts/${b.server.rows.other}`, { title: "x" });
    expectForbidden(update, "data.entity.update", "posts");
    expect(update.text).not.toContain("Confidential");
  });

  it("Step 1: a user creates (201) and updates (200) but cannot delete (4.2, 4.9)", async () => {
    const created = await b.server.as(b.tokens.user!, "POST", "/api/data/posts", { title: "Test" });
    expect(created.status, created.text).toBe(201);
    expect(created.body.data).toMatchObject({ title: "Test" });
    const updated = await b.server.as(b.tokens.user!, "PATCH", `/api/data/posts/${b.server.rows.hello}`, {
      title: "Hello again",
    });
    expect(updated.status, updated.text).toBe(200);
    const deleted = await b.server.as(b.tokens.user!, "DELETE", `/api/data/posts/${b.server.rows.other}`);
    expectForbidden(deleted, "data.entity.delete", "posts");
  });

  it("Step 1: a tampered Bearer token is 401, never anonymous (4.1)", async () => {
    const res = await b.server.as(`${b.tokens.user!.slice(0, -4)}AAAA`, "GET", "/api/data/posts");
    expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: 401, code: "unauthorized" });
  });
});

describe("Step 5 on Bun: public records with a filter", () => {
  const b = boot("step5");

  it("Step 5: anonymous lists only published posts and visible products, counted alike (4.5, 2.1)", async () => {
    const posts = await b.server.as(ANON, "GET", "/api/data/posts");
    expect(idsOf(posts)).toEqual([b.server.rows.pub]);
    expect(posts.body.meta).toMatchObject({ count: 1, total: 1 });
    expect(posts.text).not.toContain("Draft secret");
    const products = await b.server.as(ANON, "GET", "/api/data/products");
    expect(idsOf(products)).toEqual([b.server.rows.shown]);
  });

  it("Step 5: the caller's where cannot widen the filter (4.3a)", async () => {
    const where = { $or: [{ status: "draft" }, { id: { $gt: 0 } }] };
    const res = await b.server.as(ANON, "GET", `/api/data/posts?where=${q(where)}`);
    expect(idsOf(res)).toEqual([b.server.rows.pub]);
    const count = await b.server.as(ANON, "GET", `/api/data/posts/count?where=${q({ status: "draft" })}`);
    expect(count.body.data).toEqual({ count: 0 });
  });

  it("Step 5: a draft by id is 404, byte-identical to a nonexistent id (4.5, 4.10)", async () => {
    const hidden = await b.server.as(ANON, "GET", `/api/data/posts/${b.server.rows.draft}`);
    expectNotFound(hidden);
    expect(hidden.text).toBe((await b.server.as(ANON, "GET", "/api/data/posts/999999")).text);
  });

  it("Step 5: an authenticated user sees drafts and hidden products too", async () => {
    const posts = await b.server.as(b.tokens.user!, "GET", "/api/data/posts");
    expect(idsOf(posts)).toEqual(sorted([b.server.rows.pub!, b.server.rows.draft!]));
    expect((await b.server.as(b.tokens.user!, "GET", "/api/data/products")).body.meta.total).toBe(2);
  });
});

describe("Step 6 on Bun: public and owner access", () => {
  const b = boot("step6");
  const rows = () => b.server.rows as Record<"pubA" | "draftA" | "pubB" | "draftB", number>;

  it("Step 6: user A sees published posts and own drafts, never B's drafts (4.5)", async () => {
    const res = await b.server.as(b.tokens.a!, "GET", "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([rows().pubA, rows().draftA, rows().pubB]));
    expect(res.text).not.toContain("B secret");
  });

  it("Step 6: A's where never widens the owner filter (4.3a)", async () => {
    const where = { $or: [{ author_id: { $isnull: true } }, { author_id: { $ne: b.server.users.a } }] };
    const res = await b.server.as(b.tokens.a!, "GET", `/api/data/posts?where=${q(where)}`);
    expect(idsOf(res)).toEqual([rows().pubB]);
  });

  it("Step 6: A updating B's draft is 404 like a nonexistent id; B's published post is 403 (4.5, 4.10)", async () => {
    const hidden = await b.server.as(b.tokens.a!, "PATCH", `/api/data/posts/${rows().draftB}`, { title: "hijacked" });
    const missing = await b.server.as(b.tokens.a!, "PATCH", "/api/data/posts/999999", { title: "hijacked" });
    expectNotFound(hidden);
    expect(hidden.text).toBe(missing.text);
    const shown = await b.server.as(b.tokens.a!, "PATCH", `/api/data/posts/${rows().pubB}`, { title: "hijacked" });
    expectForbidden(shown, "data.entity.update", "posts");
    const draft = await b.server.as(b.tokens.b!, "GET", `/api/data/posts/${rows().draftB}`);
    expect(draft.body.data.title).toBe("B secret draft");
  });

  it("Step 6: write check: A cannot hand own post to B (4.6)", async () => {
    const res = await b.server.as(b.tokens.a!, "PATCH", `/api/data/posts/${rows().draftA}`, {
      author_id: b.server.users.b,
    });
    expectForbidden(res, "data.entity.update", "posts");
    const own = await b.server.as(b.tokens.a!, "GET", `/api/data/posts/${rows().draftA}`);
    expect(own.body.data.author_id).toBe(b.server.users.a);
  });
});
