/** §9.1 rule expressions as policies, over HTTP: SnackBase's examples, caller folding, exists(…), fail-closed unknowns. */
import { type CitadelConfig, type CreateAppInput, createApp, em, entity, enumm, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

const schema = em(
  {
    posts: entity("posts", {
      title: text().required(),
      status: enumm({ enum: ["draft", "pending", "published", "locked"] }).default("draft"),
      department: text(),
      score: number(),
    }),
    comments: entity("comments", { body: text().required() }),
    users: entity("users", { department: text() }),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users, { owner: true }),
    relation(comments, "post").manyToOne(posts),
  ],
);

const rule = (permission: string, effect: "allow" | "deny" | "filter", text: string) => ({
  permission,
  effect: "allow" as const,
  policies: [{ effect, rule: text }],
});

const app: CreateAppInput = {
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [
                { condition: { entity: "posts" }, effect: "filter", rule: "status == 'published'" },
                {
                  condition: { entity: "comments" },
                  effect: "filter",
                  rule: "exists(posts, id == outer.post_id and status == 'published')",
                },
              ],
            },
          ],
        },
        user: {
          permissions: [
            // SnackBase: `(@owns_record() and status in ['draft','pending']) or @has_role('admin')`, plus public posts
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [
                {
                  condition: { entity: "posts" },
                  effect: "allow",
                  rule: "(@owns_record() and status in ['draft','pending']) or @has_role('admin')",
                },
                { condition: { entity: "posts" }, effect: "allow", rule: "status == 'published'" },
                {
                  condition: { entity: "comments" },
                  effect: "allow",
                  rule: "exists(posts, id == outer.post_id and status == 'published')",
                },
              ],
            },
            "data.entity.create",
            rule("data.entity.update", "filter", "@owns_record() and status in ['draft', 'pending']"),
            // an unknown claim: a deny on it applies (fail closed), an allow on it does not
            {
              permission: "data.entity.delete",
              effect: "allow",
              policies: [
                { condition: { entity: "posts" }, effect: "allow", rule: "@owns_record()" },
                { condition: { entity: "posts" }, effect: "deny", rule: "user.department != department" },
              ],
            },
          ],
        },
        // "*" is every entity (9.3); a rule for every entity applies where it fits
        auditor: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [
                { condition: { entity: "*" }, effect: "allow" },
                // a deny for every entity must fit every entity (9.3): this one names only the caller
                { condition: { entity: "*" }, effect: "deny", rule: "user.email == 'banned@test.com'" },
                { condition: { entity: "posts" }, effect: "deny", rule: "status == 'locked'" },
              ],
            },
          ],
        },
        admin: {
          permissions: [
            "data.entity.read",
            // SnackBase: `@has_role('admin') and not status == 'locked'`
            rule("data.entity.update", "filter", "@has_role('admin') and not status == 'locked'"),
            rule("data.entity.delete", "filter", "@has_any_role(['admin', 'owner']) and score >= 10"),
          ],
        },
      },
    },
  },
};

interface Rows {
  draftA: number;
  pendingA: number;
  pubA: number;
  lockedA: number;
  draftB: number;
  pubB: number;
  onPub: number;
  onDraft: number;
}

describe("rule expressions as policies (9.1)", () => {
  let b: Booted<Rows>;
  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user", b: "user", root: "admin", auditor: "auditor" },
      rows: async (ctx, ids) => {
        const posts = await insert(ctx, "posts", [
          { title: "A draft", status: "draft", author_id: ids.a, score: 5 },
          { title: "A pending", status: "pending", author_id: ids.a, score: 10 },
          { title: "A published", status: "published", author_id: ids.a, score: 20 },
          { title: "A locked", status: "locked", author_id: ids.a, score: 30 },
          { title: "B draft", status: "draft", author_id: ids.b, department: "sales" },
          { title: "B published", status: "published", author_id: ids.b, department: "sales" },
        ]);
        const p = posts.map((r) => r.id as number);
        const [onPub, onDraft] = await insert(ctx, "comments", [
          { body: "on a published post", post_id: p[2] },
          { body: "on a draft", post_id: p[0] },
        ]);
        return {
          draftA: p[0]!,
          pendingA: p[1]!,
          pubA: p[2]!,
          lockedA: p[3]!,
          draftB: p[4]!,
          pubB: p[5]!,
          onPub: onPub!.id,
          onDraft: onDraft!.id,
        };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  it("an allow rule over the row and the caller: A reads own drafts and pending posts and every published one (9.1)", async () => {
    const { draftA, pendingA, pubA, pubB } = b.rows;
    const res = await b.as("a", "GET", "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([draftA, pendingA, pubA, pubB]));
    expect(res.body.meta).toMatchObject({ count: 4, total: 4 });
    expect((await b.as("a", "GET", `/api/data/posts/count?where=${q({ status: "locked" })}`)).body.data.count).toBe(0);
  });

  it("B's draft is 404 to A on every route, byte-identical to a missing row (9.1, 4.10)", async () => {
    const hidden = await b.as("a", "GET", `/api/data/posts/${b.rows.draftB}`);
    expectNotFound(hidden);
    expect(hidden.text).toBe((await b.as("a", "GET", "/api/data/posts/999999")).text);
    const res = await b.as("a", "GET", `/api/data/posts?where=${q({ title: "B draft" })}`);
    expect(res.body.data).toEqual([]);
  });

  it("@has_role folds at startup: the admin role's read reaches everything (9.1)", async () => {
    const res = await b.as("root", "GET", "/api/data/posts");
    expect(res.body.data).toHaveLength(6);
  });

  it("a filter rule with @owns_record() and `in`: A updates own drafts, not published or B's rows (9.1, 4.5)", async () => {
    const ok = await b.as("a", "PATCH", `/api/data/posts/${b.rows.pendingA}`, { title: "A pending, edited" });
    expect(ok.status, ok.text).toBe(200);
    const published = await b.as("a", "PATCH", `/api/data/posts/${b.rows.pubA}`, { title: "no" });
    expectForbidden(published, "data.entity.update", "posts");
    expectNotFound(await b.as("a", "PATCH", `/api/data/posts/${b.rows.draftB}`, { title: "no" }));
    const rows = await dbRows(b.server, "SELECT title FROM posts WHERE id IN (?, ?)", b.rows.pubA, b.rows.draftB);
    expect(rows.map((r) => r.title).sort()).toEqual(["A published", "B draft"]);
  });

  it("the write check: a rule's row part holds on the row after the write (9.1, 4.6)", async () => {
    const res = await b.as("a", "PATCH", `/api/data/posts/${b.rows.draftA}`, { status: "published" });
    expectForbidden(res, "data.entity.update", "posts");
    const [row] = await dbRows(b.server, "SELECT status FROM posts WHERE id = ?", b.rows.draftA);
    expect(row!.status).toBe("draft");
  });

  it("SnackBase's `@has_role('admin') and not status == 'locked'`: admin edits all but locked posts (9.1, 13)", async () => {
    expect((await b.as("root", "PATCH", `/api/data/posts/${b.rows.draftB}`, { title: "B draft" })).status).toBe(200);
    expectForbidden(
      await b.as("root", "PATCH", `/api/data/posts/${b.rows.lockedA}`, { title: "unlocked?" }),
      "data.entity.update",
      "posts",
    );
    const many = await b.as("root", "PATCH", "/api/data/posts", {
      update: { score: 1 },
      where: { author_id: b.ids.a, status: { $in: ["locked", "published"] } },
    });
    expect(many.status, many.text).toBe(200);
    const [locked] = await dbRows(b.server, "SELECT score FROM posts WHERE id = ?", b.rows.lockedA);
    expect(locked!.score).toBe(30);
    await b.as("root", "PATCH", `/api/data/posts/${b.rows.pubA}`, { score: 20 });
  });

  it("@has_any_role and a number comparison: admin deletes only rows with score >= 10 (9.1)", async () => {
    const res = await b.as("root", "DELETE", "/api/data/posts", { id: b.rows.draftA });
    expect(res.status, res.text).toBe(200);
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", b.rows.draftA)).toHaveLength(1);
  });

  it("a deny on a claim the token lacks applies (fail closed), even where the allow holds (9.1, 4.12)", async () => {
    // A owns draftA, but A's token has no `department`: `user.department != department` is unknown there
    const res = await b.as("a", "DELETE", `/api/data/posts/${b.rows.draftA}`);
    expect(res.status, res.text).toBe(403);
    expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", b.rows.draftA)).toHaveLength(1);
  });

  it("exists(posts, id == outer.post_id and …): comments of published posts only, on lists and with (9.1, 4.13)", async () => {
    for (const who of [ANON, "a"]) {
      const res = await b.as(who, "GET", "/api/data/comments");
      expect(idsOf(res), who).toEqual([b.rows.onPub]);
      expectNotFound(await b.as(who, "GET", `/api/data/comments/${b.rows.onDraft}`));
    }
    const withComments = await b.as(ANON, "GET", `/api/data/posts/${b.rows.pubA}?with=comments`);
    expect(withComments.body.data.comments.map((c: { id: number }) => c.id)).toEqual([b.rows.onPub]);
  });

  it('"*" as a condition\'s entity reaches every entity, and a deny for every entity applies on each (9.3)', async () => {
    const posts = await b.as("auditor", "GET", "/api/data/posts");
    expect(posts.status, posts.text).toBe(200);
    expect(idsOf(posts)).not.toContain(b.rows.lockedA);
    expect(idsOf(posts)).toHaveLength(5);
    expectNotFound(await b.as("auditor", "GET", `/api/data/posts/${b.rows.lockedA}`));
    expect(idsOf(await b.as("auditor", "GET", "/api/data/comments"))).toEqual(sorted([b.rows.onPub, b.rows.onDraft]));
    expect((await b.as("auditor", "GET", "/api/data/users")).status).toBe(200);
    expectForbidden(
      await b.as("auditor", "POST", "/api/data/comments", { body: "x" }),
      "data.entity.create",
      "comments",
    );
  });

  it("anonymous: the filter rule folds `user.*` to unknown, never to NULL = NULL (9.1, 4.4)", async () => {
    const res = await b.as(ANON, "GET", "/api/data/posts");
    expect(idsOf(res)).toEqual(sorted([b.rows.pubA, b.rows.pubB]));
  });
});

/** One entry of a role's `permissions`, as a config writes it. */
type Permission = NonNullable<NonNullable<NonNullable<CitadelConfig["auth"]>["roles"]>[string]["permissions"]>[number];

describe("rule errors at startup point at the line and column (9.1)", () => {
  /** An app whose one role, `user`, has these permissions (over `data`, with an encryption key). */
  const startWith = (permissions: Permission[], data = schema.toJSON()) =>
    createApp({
      connection: { url: ":memory:" },
      config: { data, auth: { enabled: true, jwt: { secret: "x".repeat(40) }, roles: { user: { permissions } } } },
      options: { encryptionKeys: `k1:${Buffer.alloc(32, 7).toString("base64")}` },
    });
  const withRule = (text: string, entity = "posts") =>
    startWith([{ permission: "data.entity.read", policies: [{ condition: { entity }, effect: "allow", rule: text }] }]);
  const path = "config.auth.roles.user.permissions[0].policies[0].rule";

  for (const [text, message] of [
    ["status = 'draft'", /line 1, column 8: unexpected "=" \(compare with "=="\)/],
    ["status == 'draft' and", /line 1, column 22: expected a value, a name/],
    ["nope == 1", /line 1, column 1: unknown field "nope" of posts/],
    ["score == 'ten'", /line 1, column 7: expected a number for "score"/],
    ["@has_rol('x')", /unknown function @has_rol/],
    ["status == 'a'\n  or title == \"x", /line 2, column 15: unterminated string/],
    ["exists(nothing, id == outer.id)", /unknown entity "nothing"/],
    ["outer.id == 1", /outer.<field> names the enclosing row/],
    ["@is_superadmin()", /needs config.tenancy.superadmin_role/],
    ["title == '@user.id'", /reserved for the caller/],
    [`${"(".repeat(40)}true${")".repeat(40)}`, /nested deeper than 32 levels/],
  ] as const)
    it(`"${text.slice(0, 30)}" → ${message} (9.1)`, async () => {
      await expect(withRule(text)).rejects.toThrow(message);
      await expect(withRule(text)).rejects.toThrow(path);
    });

  it("exists(…) comparing an encrypted field with outer.<field> is a startup error: ciphertexts differ (9.1, 10.3)", async () => {
    const vault = em(
      { notes: entity("notes", { code: text().encrypted() }), pins: entity("pins", { code: text() }) },
      () => [],
    );
    const start = (rule: string) =>
      startWith(
        [{ permission: "data.entity.read", policies: [{ condition: { entity: "pins" }, effect: "allow", rule }] }],
        vault.toJSON(),
      );
    await expect(start("exists(notes, code == outer.code)")).rejects.toThrow(
      /encrypted fields cannot be compared across rows/,
    );
    const app = await start("exists(notes, id == outer.id)");
    await app.close();
  });

  it("a deny whose rule does not fit every entity it applies to is a startup error, not a deny that skips them (9.1, 9.3)", async () => {
    for (const condition of [undefined, { entity: "*" }, { entity: { $in: ["posts", "comments"] } }]) {
      const start = startWith([
        "data.entity.read",
        {
          permission: "data.entity.read",
          effect: "deny",
          policies: [{ ...(condition ? { condition } : {}), rule: "status == 'locked'" }],
        },
      ]);
      await expect(start, JSON.stringify(condition)).rejects.toThrow(
        /a deny's rule must fit every entity it applies to.*on comments/,
      );
    }
    // a deny that names its one entity is told only what is wrong with its rule
    const named = startWith([
      "data.entity.read",
      {
        permission: "data.entity.read",
        effect: "deny",
        policies: [{ condition: { entity: "comments" }, rule: "status == 'locked'" }],
      },
    ]);
    await expect(named).rejects.toThrow(/on comments: .*status/);
    await expect(named).rejects.not.toThrow(/must fit every entity/);
  });

  it("@owns_record() on an entity without an owner relation is a startup error naming it (9.1, 4.14)", async () => {
    await expect(withRule("@owns_record()", "comments")).rejects.toThrow(/"comments" has no owner relation/);
  });
});
