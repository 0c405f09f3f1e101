/**
 * §13 `examples/accounts`: SnackBase's "Security Model" page walked statement by statement over HTTP, as the
 * admin, editor, viewer, moderator, author and hr of account AB1001, the admin of account XY2048, the platform's
 * superadmin, an anonymous caller and AB1001's publishable key; every refused write is checked against the
 * database itself, and a last test checks that no hidden value reached any response of the file
 * (§4.5–4.10, 4.14, 4.16, 6.1–6.5, 7.1–7.5, 9.1, 9.3, 9.4).
 *
 * Not expressible as the page says it (see examples/accounts/config.ts):
 * - `GET /api/v1/posts?account_id=XY2048` "403 Forbidden": Citadel's `where` only narrows (200, no rows), a row
 *   of another account is 404, and the attempt is counted.
 * - "Permissions are cached for 5 minutes": policies are compiled at startup; a role change revokes tokens at once.
 * - A filter rule also checks the row after the write (§4.6): an editor cannot move their draft to `published`.
 * - `@owns_record()` on users (who own themselves) is `id == user.id`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import accounts from "../../examples/accounts/config.js";
import { main } from "../../src/cli/main.js";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { parsePrometheus } from "../metrics/prometheus-text.js";
import {
  expectForbidden,
  expectNotFound,
  idsOf,
  PASSWORD,
  q,
  type Row,
  refusedWithout,
  sorted,
  testConfig,
} from "./helpers.js";

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

/** Who asks: account AB1001's people, XY2048's admin, the superadmin, nobody, AB1001's publishable key. */
const PEOPLE = {
  admin: { account: "AB1001", role: "admin" },
  editor: { account: "AB1001", role: "editor" },
  viewer: { account: "AB1001", role: "viewer" },
  moderator: { account: "AB1001", role: "moderator" },
  author: { account: "AB1001", role: "author" },
  hr: { account: "AB1001", role: "hr" },
  xy: { account: "XY2048", role: "admin" },
  root: { account: undefined, role: "superadmin" },
} as const;
type Person = keyof typeof PEOPLE;
type Who = Person | "anon" | "pk";

/** Values no response may show to whoever may not read them (strings a hash or a time cannot contain). */
const ssnOf = (p: Person) => `SSN-${p.toUpperCase()}-0000`;
const SALARY: Record<Person, number> = {
  admin: 7_100_001,
  editor: 7_200_002,
  viewer: 7_300_003,
  moderator: 7_400_004,
  author: 7_500_005,
  hr: 7_600_006,
  xy: 7_700_007,
  root: 7_800_008,
};
const phoneOf = (p: Person) => `+1-555-${p.toUpperCase()}`;
const DRAFT_NOTES = "DRAFT-NOTES-NOT-FOR-THE-PUBLIC";
const INTERNAL = "INTERNAL-STATUS-NOT-FOR-THE-PUBLIC";
const IP_AB = "10.77.0.1";
const IP_XY = "10.88.0.2";
const XY_TITLE = "XY2048's confidential roadmap";

interface Ids {
  AB: number;
  XY: number;
  user: Record<Person, number>;
  /** AB1001's posts by owner and status, XY2048's one post, comments */
  editorDraft: number;
  editorPending: number;
  editorPublished: number;
  adminLocked: number;
  authorPublished: number;
  authorDraft: number;
  xyPost: number;
  abComment: number;
  xyComment: number;
}

describe("examples/accounts: SnackBase's Security Model as a Citadel app (§13)", () => {
  let server: TestServer;
  let ids: Ids;
  const tokens = {} as Record<Person, string>;
  let pk: string;
  /** every response this file got, by who asked: the last test looks for hidden values in all of them */
  const seen: { who: Who; what: string; text: string }[] = [];

  const headersOf = (who: Who): Record<string, string> =>
    who === "anon" ? {} : who === "pk" ? { apikey: pk } : bearer(tokens[who]);
  const as = async (who: Who, method: string, path: string, body?: unknown): Promise<TestResponse> => {
    const res = await server.request(method, path, body, headersOf(who));
    seen.push({ who, what: `${method} ${path}`, text: res.text });
    return res;
  };
  const ok = async (who: Who, method: string, path: string, body?: unknown) => {
    const res = await as(who, method, path, body);
    expect(res.status, `${method} ${path} as ${who}: ${res.text}`).toBeLessThan(300);
    return res;
  };
  const rows = (sql: string, ...params: unknown[]) => server.rows(sql, ...params);
  /** A user's row through the list and update-many routes (read-one and update-one have a test of their own). */
  const userOf = async (who: Who, id: number): Promise<Row> => {
    const res = await ok(who, "GET", `/api/data/users?where=${q({ id })}`);
    expect(res.body.data, `user ${id} as ${who}`).toHaveLength(1);
    return res.body.data[0];
  };
  const patchUser = (who: Who, id: number, update: Row) =>
    as(who, "PATCH", "/api/data/users", { where: { id }, update });
  const patchedUser = async (who: Who, id: number, update: Row): Promise<Row> => {
    const res = await patchUser(who, id, update);
    expect(res.status, `PATCH user ${id} as ${who}: ${res.text}`).toBe(200);
    expect(res.body.data).toHaveLength(1);
    return res.body.data[0];
  };
  /** Everything a write could change, the data entries of the audit trail included. */
  const database = async () => ({
    posts: await rows(
      "SELECT id, account_id, author_id, title, content, status, priority, draft_notes FROM posts ORDER BY id",
    ),
    comments: await rows("SELECT id, account_id, author_id, post_id, body, author_ip FROM comments ORDER BY id"),
    users: await rows("SELECT id, account_id, email, role, name, phone, ssn, salary FROM users ORDER BY id"),
    accounts: await rows("SELECT id, name, slug FROM accounts ORDER BY id"),
    entries: await rows("SELECT count(*) AS n FROM citadel_audit WHERE action LIKE 'data.%'"),
  });
  /** `attempt` is refused as `check` says and the database is as it was. */
  const refused = refusedWithout(database);
  const post = async (owner: Person, title: string, status: string): Promise<number> => {
    const [row] = (await server.app.module.data.create("posts", [
      {
        title,
        status,
        content: `${title}: content`,
        author_id: ids.user[owner],
        account_id: PEOPLE[owner].account === "XY2048" ? ids.XY : ids.AB,
      },
    ])) as Row[];
    return row!.id as number;
  };
  const entries = async (who: Who, where: unknown) =>
    (await ok(who, "GET", `/api/system/audit?where=${q(where)}&sort=-id&limit=100`)).body.data as Row[];
  const scrape = async () => parsePrometheus((await ok("root", "GET", "/api/system/metrics")).text);

  beforeAll(async () => {
    const made = {} as Ids;
    server = await startServer(testConfig(accounts.config), {
      options: {
        seed: async ({ app }) => {
          const [ab, xy] = (await app.module.data.create("accounts", [
            { name: "AB1001", slug: "ab1001" },
            { name: "XY2048", slug: "xy2048" },
          ])) as Row[];
          made.AB = ab!.id;
          made.XY = xy!.id;
          made.user = {} as Record<Person, number>;
          for (const [name, p] of Object.entries(PEOPLE) as [Person, (typeof PEOPLE)[Person]][]) {
            const user = await app.module.auth.createUser({
              email: `${name}@${(p.account ?? "platform").toLowerCase()}.test`,
              password: PASSWORD,
              role: p.role,
              ...(p.account ? { account_id: p.account === "AB1001" ? made.AB : made.XY } : {}),
              name: `${name} of ${p.account ?? "the platform"}`,
              phone: phoneOf(name),
              ssn: ssnOf(name),
              salary: SALARY[name],
            });
            made.user[name] = user.id as number;
          }
          const posts = (await app.module.data.create(
            "posts",
            (
              [
                ["editor", "Editor's draft", "draft"],
                ["editor", "Editor's pending", "pending"],
                ["editor", "Editor's published", "published"],
                ["admin", "Admin's locked", "locked"],
                ["author", "Author's published", "published"],
                ["author", "Author's draft", "draft"],
              ] as const
            ).map(([owner, title, status], i) => ({
              title,
              status,
              priority: i + 1,
              content: `${title}: content`,
              draft_notes: DRAFT_NOTES,
              internal_status: INTERNAL,
              author_id: made.user[owner],
              account_id: made.AB,
            })),
          )) as Row[];
          const [p1, p2, p3, p4, p5, p6] = posts.map((r) => r.id as number) as [number, ...number[]];
          Object.assign(made, {
            editorDraft: p1,
            editorPending: p2,
            editorPublished: p3,
            adminLocked: p4,
            authorPublished: p5,
            authorDraft: p6,
          });
          const [xyPost] = (await app.module.data.create("posts", [
            {
              title: XY_TITLE,
              status: "draft",
              author_id: made.user.xy,
              account_id: made.XY,
              draft_notes: DRAFT_NOTES,
            },
          ])) as Row[];
          made.xyPost = xyPost!.id;
          const [abComment, xyComment] = (await app.module.data.create("comments", [
            {
              body: "a reader on AB1001",
              author_ip: IP_AB,
              post_id: made.editorPublished,
              author_id: made.user.author,
              account_id: made.AB,
            },
            { body: "a reader on XY2048", author_ip: IP_XY, post_id: made.xyPost, account_id: made.XY },
          ])) as Row[];
          made.abComment = abComment!.id;
          made.xyComment = xyComment!.id;
        },
      },
    });
    ids = made;
    for (const [name, p] of Object.entries(PEOPLE) as [Person, (typeof PEOPLE)[Person]][])
      tokens[name] = await login(server, `${name}@${(p.account ?? "platform").toLowerCase()}.test`, PASSWORD);
    // AB1001's public pages: a publishable key of that account, made by the superadmin (§5, §6)
    const key = await ok("root", "POST", "/api/system/keys", {
      name: "AB1001 web",
      kind: "publishable",
      tenant: ids.AB,
    });
    pk = key.body.data.key;
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('"Authentication vs Authorization": 401 is "who are you?", 403 is "what can you do?"', () => {
    it('"User has editor role; editor role does NOT have delete permission → 403 Forbidden" (4.9, 4.16)', async () => {
      await refused(
        () => as("editor", "DELETE", `/api/data/posts/${ids.editorDraft}`),
        (res) => {
          expectForbidden(res, DELETE, "posts");
          expect(res.body.error.message).toBe('role "editor" lacks permission data.entity.delete on posts');
        },
      );
    });

    it("a tampered or garbage token is 401, never silently anonymous (4.1, 4.9)", async () => {
      const [head, payload, signature] = tokens.viewer.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url");
      for (const token of [`${head}.${forged}.${signature}`, "not-a-token"]) {
        const res = await server.request("GET", "/api/data/posts", undefined, bearer(token));
        expect(res.status, res.text).toBe(401);
      }
    });

    it('"JWT tokens, Argon2id password hashing": hashes are argon2id and no response carries one (3.1, 4.8)', async () => {
      const hashes = await rows("SELECT password_hash FROM users");
      for (const { password_hash } of hashes) expect(password_hash).toMatch(/^\$argon2id\$/);
      for (const who of ["admin", "root"] as const) {
        const res = await ok(who, "GET", "/api/data/users");
        expect(res.text).not.toContain("password_hash");
        expect(res.text).not.toContain("$argon2id$");
      }
    });
  });

  describe('"RBAC Hierarchy": admin, editor, viewer of Account AB1001', () => {
    it('"admin: All operations on all collections" (`"collection": "*"`): create, read, update, delete on posts, comments, users (4.2, 9.3)', async () => {
      const created = await ok("admin", "POST", "/api/data/posts", { title: "by the admin", status: "draft" });
      expect(created.body.data).toMatchObject({ author_id: ids.user.admin, account_id: ids.AB });
      const id = created.body.data.id as number;
      await ok("admin", "PATCH", `/api/data/posts/${id}`, { status: "published" });
      const comment = await ok("admin", "POST", "/api/data/comments", { body: "admin's", post_id: id });
      await ok("admin", "PATCH", `/api/data/comments/${comment.body.data.id}`, { body: "admin's, edited" });
      await ok("admin", "DELETE", `/api/data/comments/${comment.body.data.id}`);
      await ok("admin", "DELETE", `/api/data/posts/${id}`);
      expect(await rows("SELECT id FROM posts WHERE id = ?", id)).toEqual([]);
      const users = await ok("admin", "GET", "/api/data/users?sort=id");
      expect(idsOf(users)).toEqual(
        sorted((["admin", "editor", "viewer", "moderator", "author", "hr"] as const).map((p) => ids.user[p])),
      );
      await patchedUser("admin", ids.user.viewer, { name: "viewer, renamed" });
      await patchedUser("admin", ids.user.viewer, { name: "viewer of AB1001" });
    });

    it('"editor: Create, Read, Update on posts only": comments and users are 403, and so is delete (4.2, 4.5)', async () => {
      const list = await ok("editor", "GET", "/api/data/posts");
      expect(list.body.meta.total).toBe(6);
      for (const entity of ["comments", "users"])
        expectForbidden(await as("editor", "GET", `/api/data/${entity}`), READ, entity);
      await refused(
        () => as("editor", "POST", "/api/data/comments", { body: "x", post_id: ids.editorDraft }),
        (res) => expectForbidden(res, CREATE, "comments"),
      );
      await refused(
        () => as("editor", "DELETE", "/api/data/posts", { id: { $gt: 0 } }),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
    });

    it('"viewer: Read on posts only": every post of the account, and no write anywhere (4.2, 4.5)', async () => {
      const list = await ok("viewer", "GET", "/api/data/posts?sort=id");
      expect(list.body.meta.total).toBe(6);
      expect(list.text).not.toContain(XY_TITLE);
      await refused(
        () => as("viewer", "POST", "/api/data/posts", { title: "viewer's" }),
        (res) => expectForbidden(res, CREATE, "posts"),
      );
      await refused(
        () => as("viewer", "PATCH", `/api/data/posts/${ids.editorDraft}`, { title: "viewer was here" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("viewer", "DELETE", `/api/data/posts/${ids.editorDraft}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
      expectForbidden(await as("viewer", "GET", "/api/data/comments"), READ, "comments");
    });

    it('Custom Roles: "moderator" may read, update, delete comments but not create them; read users, not update them (4.2)', async () => {
      const list = await ok("moderator", "GET", "/api/data/comments");
      expect(idsOf(list)).toEqual([ids.abComment]);
      const [mine] = (await server.app.module.data.create("comments", [
        { body: "spam", post_id: ids.editorPublished, account_id: ids.AB, author_ip: IP_AB },
      ])) as Row[];
      await ok("moderator", "PATCH", `/api/data/comments/${mine!.id}`, { body: "[removed by a moderator]" });
      await ok("moderator", "DELETE", `/api/data/comments/${mine!.id}`);
      await refused(
        () => as("moderator", "POST", "/api/data/comments", { body: "x", post_id: ids.editorPublished }),
        (res) => expectForbidden(res, CREATE, "comments"),
      );
      await ok("moderator", "GET", "/api/data/users");
      await refused(
        () => as("moderator", "PATCH", `/api/data/users/${ids.user.viewer}`, { name: "x" }),
        (res) => expectForbidden(res, UPDATE, "users"),
      );
      expectForbidden(await as("moderator", "GET", "/api/data/posts"), READ, "posts");
    });
  });

  describe('"Permission Structure": the editor\'s `fields` and `rules.create: "@has_role(\'editor\')"`', () => {
    it("an editor creates a post: the server sets its author and account (4.14, 6.2, 9.1)", async () => {
      const res = await ok("editor", "POST", "/api/data/posts", {
        title: "editor's new",
        content: "c",
        status: "draft",
      });
      expect(res.body.data).toMatchObject({ author_id: ids.user.editor, account_id: ids.AB, status: "draft" });
      await ok("admin", "DELETE", `/api/data/posts/${res.body.data.id}`);
    });

    it('`"fields": ["title", "content", "status"]`: writing any other field is 403 naming it, nothing written (4.8, 4.16)', async () => {
      await refused(
        () => as("editor", "POST", "/api/data/posts", { title: "t", priority: 9 }),
        (res) => {
          expectForbidden(res, CREATE, "posts");
          expect(res.body.error.message).toContain("priority");
        },
      );
      await refused(
        () => as("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { internal_status: "promoted" }),
        (res) => {
          expectForbidden(res, UPDATE, "posts");
          expect(res.body.error.message).toContain("internal_status");
        },
      );
    });
  });

  describe("\"Permission Rules Example\": update `(@owns_record() and status in ['draft', 'pending']) or @has_role('admin')`", () => {
    it('"They created the post AND status is draft/pending": the editor updates their draft and their pending post (9.1)', async () => {
      for (const id of [ids.editorDraft, ids.editorPending]) {
        const res = await ok("editor", "PATCH", `/api/data/posts/${id}`, { content: "edited by its editor" });
        expect(res.body.data.content).toBe("edited by its editor");
      }
      await ok("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { status: "pending" });
      await ok("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { status: "draft" });
    });

    it("not their published post, not another's draft: 403, nothing written (4.5, 4.16, 9.1)", async () => {
      for (const id of [ids.editorPublished, ids.authorDraft])
        await refused(
          () => as("editor", "PATCH", `/api/data/posts/${id}`, { title: "hijacked" }),
          (res) => {
            expectForbidden(res, UPDATE, "posts");
            expect(res.body.error.message).toContain("outside");
          },
        );
    });

    it("the row after the write must satisfy the rule too: an editor cannot publish their own draft (4.6, 9.1)", async () => {
      await refused(
        () => as("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { status: "published" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });

    it("a where matching everything reaches the editor's draft and pending posts only (4.3a, 4.5)", async () => {
      const res = await ok("editor", "PATCH", "/api/data/posts", {
        where: { $or: [{ id: { $gt: 0 } }, { status: "published" }] },
        update: { content: "bulk by the editor" },
      });
      expect(idsOf(res)).toEqual(sorted([ids.editorDraft, ids.editorPending]));
      const touched = await rows("SELECT id FROM posts WHERE content = ? ORDER BY id", "bulk by the editor");
      expect(touched.map((r) => r.id)).toEqual(sorted([ids.editorDraft, ids.editorPending]));
    });

    it('"OR They have admin role": the admin updates any post of the account, published and locked too (9.1)', async () => {
      for (const id of [ids.editorPublished, ids.adminLocked, ids.authorDraft])
        await ok("admin", "PATCH", `/api/data/posts/${id}`, { content: "reviewed by the admin" });
      await ok("admin", "PATCH", `/api/data/posts/${ids.editorPending}`, { status: "published" });
      await ok("admin", "PATCH", `/api/data/posts/${ids.editorPending}`, { status: "pending" });
    });
  });

  describe("Best practice 2: delete `@has_role('admin') and not record.status == 'locked'`", () => {
    it("the admin cannot delete a locked post: 403, nothing written (9.1, 4.16)", async () => {
      await refused(
        () => as("admin", "DELETE", `/api/data/posts/${ids.adminLocked}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
    });

    it("a delete of many by the admin skips the locked post; an unlocked one goes (4.5, 9.1)", async () => {
      const a = await post("editor", "to delete, a", "draft");
      const res = await ok("admin", "DELETE", "/api/data/posts", { id: { $in: [a, ids.adminLocked] } });
      expect(idsOf(res)).toEqual([a]);
      expect(await rows("SELECT id FROM posts WHERE id = ?", ids.adminLocked)).toEqual([{ id: ids.adminLocked }]);
    });
  });

  describe("Scenario 1 \"User Can Only Edit Their Own Posts\": author update `@owns_record()`, delete `@owns_record() and not status == 'published'`", () => {
    it("the author updates their own posts, published included, and not the editor's (4.14, 9.1)", async () => {
      await ok("author", "PATCH", `/api/data/posts/${ids.authorPublished}`, { content: "the author's edit" });
      await refused(
        () => as("author", "PATCH", `/api/data/posts/${ids.editorDraft}`, { content: "x" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });

    it("the author deletes their own draft, not their published post, not another's (9.1)", async () => {
      await refused(
        () => as("author", "DELETE", `/api/data/posts/${ids.authorPublished}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
      await refused(
        () => as("author", "DELETE", `/api/data/posts/${ids.editorDraft}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
      const draft = await post("author", "author's scratch", "draft");
      await ok("author", "DELETE", `/api/data/posts/${draft}`);
      expect(await rows("SELECT id FROM posts WHERE id = ?", draft)).toEqual([]);
    });
  });

  describe('"Field Visibility": viewer on users `"fields": ["name", "email"]`, excluded `phone`, `ssn`, `salary`', () => {
    it("the viewer's users carry id, name and email only (4.8)", async () => {
      const res = await ok("viewer", "GET", "/api/data/users?sort=id");
      for (const row of res.body.data as Row[]) expect(Object.keys(row).sort()).toEqual(["email", "id", "name"]);
      expect(Object.keys(await userOf("viewer", ids.user.admin)).sort()).toEqual(["email", "id", "name"]);
    });

    it("where, sort and select on an excluded field are 400: no oracle (4.8)", async () => {
      for (const query of [
        `where=${q({ phone: phoneOf("admin") })}`,
        `where=${q({ salary: { $gt: 0 } })}`,
        `where=${q({ ssn: ssnOf("admin") })}`,
        "sort=salary",
        "select=phone",
      ]) {
        expect((await as("viewer", "GET", `/api/data/users?${query}`)).status, query).toBe(400);
        if (query.startsWith("where"))
          expect((await as("viewer", "GET", `/api/data/users/count?${query}`)).status, query).toBe(400);
      }
    });
  });

  describe("\"Field-Level Rules\": salary read `@has_role('admin') or @owns_record()`, write `@has_role('hr') or @is_superadmin()`", () => {
    const salaries = (res: TestResponse) =>
      Object.fromEntries((res.body.data as Row[]).map((r) => [r.id, "salary" in r ? r.salary : "absent"]));

    it("the admin reads every salary of the account; the moderator and hr their own only (absent elsewhere) (9.4)", async () => {
      const admin = await ok("admin", "GET", "/api/data/users?sort=id");
      for (const row of admin.body.data as Row[]) expect(row.salary).toBeTypeOf("number");
      for (const who of ["moderator", "hr"] as const) {
        const res = await ok(who, "GET", "/api/data/users?sort=id");
        const got = salaries(res);
        for (const [id, salary] of Object.entries(got))
          expect(salary, `${who} reading user ${id}`).toBe(Number(id) === ids.user[who] ? SALARY[who] : "absent");
        expect(await userOf(who, ids.user.admin)).not.toHaveProperty("salary");
        expect((await userOf(who, ids.user[who])).salary).toBe(SALARY[who]);
      }
    });

    it("where and count on salary see only the rows where the rule holds; sort ranks the rest as NULL (9.4)", async () => {
      for (const where of [
        { salary: SALARY.admin },
        { salary: { $gt: 7_000_000 } },
        { salary: { $isnull: true } },
        { $not: { salary: { $lt: SALARY.hr } } },
      ]) {
        const res = await ok("moderator", "GET", `/api/data/users?where=${q(where)}`);
        // the admin's and the viewer's salaries differ; the moderator's answers treat them alike
        const got = idsOf(res);
        expect(got.includes(ids.user.admin), JSON.stringify(where)).toBe(got.includes(ids.user.viewer));
        const count = await ok("moderator", "GET", `/api/data/users/count?where=${q(where)}`);
        expect(count.body.data.count).toBe(got.length);
      }
      for (const sort of ["salary", "-salary"]) {
        const res = await ok("moderator", "GET", `/api/data/users?sort=${sort}`);
        const order = (res.body.data as Row[]).map((r) => r.id).filter((id) => id !== ids.user.moderator);
        expect(order, sort).toEqual(sorted(order)); // by id, the tiebreak: not by the hidden salaries
      }
    });

    it("the admin may not write a salary: 403 naming it, nothing written (9.4, 4.16)", async () => {
      await refused(
        () => as("admin", "PATCH", `/api/data/users/${ids.user.editor}`, { salary: 1 }),
        (res) => {
          expectForbidden(res, UPDATE, "users");
          expect(res.body.error.message).toContain("salary");
        },
      );
      await refused(
        () => as("moderator", "PATCH", `/api/data/users/${ids.user.moderator}`, { salary: 1 }),
        (res) => expectForbidden(res, UPDATE, "users"),
      );
    });

    it("hr writes a salary; its answer hides the salary hr may not read (9.4, 4.10)", async () => {
      const res = await patchUser("hr", ids.user.editor, { salary: 7_200_102 });
      expect(res.status, res.text).toBe(200);
      expect(res.body.data[0]).not.toHaveProperty("salary");
      expect(res.text).not.toContain("7200102");
      expect(await rows("SELECT salary FROM users WHERE id = ?", ids.user.editor)).toEqual([{ salary: 7_200_102 }]);
      expect(await patchedUser("hr", ids.user.editor, { salary: SALARY.editor })).not.toHaveProperty("salary");
    });

    it("@is_superadmin(): the superadmin writes a salary of any account; it reads only its own, as the read rule says (9.1, 9.4)", async () => {
      expect(await patchedUser("root", ids.user.xy, { salary: SALARY.xy + 1 })).not.toHaveProperty("salary");
      expect(await rows("SELECT salary FROM users WHERE id = ?", ids.user.xy)).toEqual([{ salary: SALARY.xy + 1 }]);
      await patchedUser("root", ids.user.xy, { salary: SALARY.xy });
      expect((await userOf("root", ids.user.root)).salary).toBe(SALARY.root);
    });

    it("email read `true`, write `@has_role('admin')`: everyone who reads users reads it; hr may not write it (9.4)", async () => {
      for (const who of ["viewer", "moderator", "hr", "admin"] as const) {
        expect((await userOf(who, ids.user.editor)).email).toBe("editor@ab1001.test");
      }
      await refused(
        () => patchUser("hr", ids.user.viewer, { email: "v2@ab1001.test" }),
        (res) => {
          expectForbidden(res, UPDATE, "users");
          expect(res.body.error.message).toContain("email");
        },
      );
      await patchedUser("admin", ids.user.viewer, { email: "v2@ab1001.test" });
      await patchedUser("admin", ids.user.viewer, { email: "viewer@ab1001.test" });
    });
  });

  /*
   * Found by this example: on a route naming one row, foldCondition (src/guard/conditions.ts) evaluated a leaf on
   * `id` at once, while a rule's caller value (`user.id`) was still a placeholder there, so `id == user.id` answered
   * 500 "unbound placeholder @user.id" on GET/PATCH/DELETE /api/data/users/:id.
   */
  it("a user's own row by id under the field rule `id == user.id`: read-one and update-one answer (9.1, 9.4)", async () => {
    const own = await as("moderator", "GET", `/api/data/users/${ids.user.moderator}`);
    expect(own.status, own.text).toBe(200);
    expect(own.body.data.salary).toBe(SALARY.moderator);
    const other = await as("moderator", "GET", `/api/data/users/${ids.user.admin}`);
    expect(other.status, other.text).toBe(200);
    expect(other.body.data).not.toHaveProperty("salary");
    const written = await as("hr", "PATCH", `/api/data/users/${ids.user.editor}`, { salary: SALARY.editor });
    expect(written.status, written.text).toBe(200);
    expect(written.body.data).not.toHaveProperty("salary");
  });

  describe('Best practice 3 "Hide sensitive fields by default": `excluded_fields: ["password_hash", "ssn", "salary"]`', () => {
    it("no role of an account reads ssn, the admin included; where/sort on it are 400 (4.8, 9.4)", async () => {
      for (const who of ["admin", "moderator", "hr"] as const) {
        const res = await ok(who, "GET", "/api/data/users");
        for (const row of res.body.data as Row[]) expect(row).not.toHaveProperty("ssn");
        for (const query of [`where=${q({ ssn: ssnOf("editor") })}`, "sort=ssn"])
          expect((await as(who, "GET", `/api/data/users?${query}`)).status, `${who} ${query}`).toBe(400);
      }
      await refused(
        () => as("admin", "PATCH", `/api/data/users/${ids.user.editor}`, { ssn: "SSN-REWRITTEN" }),
        (res) => expectForbidden(res, UPDATE, "users"),
      );
    });

    it("the superadmin reads it (@is_superadmin())", async () => {
      expect((await userOf("root", ids.user.editor)).ssn).toBe(ssnOf("editor"));
    });
  });

  describe('Scenario 2 "Moderators Can Edit All Comments": `author_ip: { read: "@has_role(\'admin\')" }`', () => {
    it("the moderator never gets author_ip (list, read-one, update answer); where/sort on it are 400 (9.4)", async () => {
      const list = await ok("moderator", "GET", "/api/data/comments");
      for (const row of list.body.data as Row[]) expect(row).not.toHaveProperty("author_ip");
      const one = await ok("moderator", "GET", `/api/data/comments/${ids.abComment}`);
      expect(one.body.data).not.toHaveProperty("author_ip");
      const edited = await ok("moderator", "PATCH", `/api/data/comments/${ids.abComment}`, {
        body: "a reader on AB1001 (edited)",
      });
      expect(edited.body.data).not.toHaveProperty("author_ip");
      for (const query of [`where=${q({ author_ip: IP_AB })}`, "sort=author_ip", "select=author_ip"])
        expect((await as("moderator", "GET", `/api/data/comments?${query}`)).status, query).toBe(400);
    });

    it("the admin reads it, in lists and through with (9.4, 4.5)", async () => {
      const one = await ok("admin", "GET", `/api/data/comments/${ids.abComment}`);
      expect(one.body.data.author_ip).toBe(IP_AB);
      const withComments = await ok("admin", "GET", `/api/data/posts/${ids.editorPublished}?with=comments`);
      expect(withComments.body.data.comments.map((c: Row) => c.author_ip)).toContain(IP_AB);
    });
  });

  describe('Scenario 3 "Public Read, Private Write": anonymous reads posts, excluded `draft_notes`, `internal_status`', () => {
    it("the account's publishable key reads its posts without draft_notes and internal_status (4.8, 6.1)", async () => {
      const res = await ok("pk", "GET", "/api/data/posts?sort=id");
      expect(res.body.meta.total).toBeGreaterThanOrEqual(6);
      for (const row of res.body.data as Row[]) {
        expect(row.account_id).toBe(ids.AB);
        expect(row).not.toHaveProperty("draft_notes");
        expect(row).not.toHaveProperty("internal_status");
      }
      for (const query of [`where=${q({ draft_notes: DRAFT_NOTES })}`, "sort=internal_status"])
        expect((await as("pk", "GET", `/api/data/posts?${query}`)).status, query).toBe(400);
    });

    it('"create: false, update: false, delete: false": writes are 403, nothing written (4.2)', async () => {
      for (const who of ["pk", "anon"] as const) {
        await refused(
          () => as(who, "POST", "/api/data/posts", { title: "anonymous" }),
          (res) => expectForbidden(res, CREATE, "posts"),
        );
        await refused(
          () => as(who, "PATCH", "/api/data/posts", { where: {}, update: { title: "anonymous" } }),
          (res) => expect(res.status).toBe(403),
        );
        await refused(
          () => as(who, "DELETE", `/api/data/posts/${ids.editorPublished}`),
          (res) => expect([403, 404]).toContain(res.status),
        );
      }
    });

    it("a caller of no account (no token, no key) sees no account's posts (6.2)", async () => {
      const res = await ok("anon", "GET", "/api/data/posts");
      expect(res.body).toMatchObject({ data: [], meta: { total: 0 } });
      expectNotFound(await as("anon", "GET", `/api/data/posts/${ids.editorPublished}`));
    });
  });

  describe('"Account Isolation": "All data is automatically isolated by account_id"', () => {
    it('"Users cannot see or access data from other accounts": lists, counts, users, comments (6.1)', async () => {
      const posts = await ok("xy", "GET", "/api/data/posts");
      expect(idsOf(posts)).toEqual([ids.xyPost]);
      const count = await ok("xy", "GET", "/api/data/posts/count");
      expect(count.body.data.count).toBe(1);
      expect(idsOf(await ok("xy", "GET", "/api/data/users"))).toEqual([ids.user.xy]);
      expect(idsOf(await ok("xy", "GET", "/api/data/comments"))).toEqual([ids.xyComment]);
      const ab = await ok("admin", "GET", "/api/data/posts");
      expect(idsOf(ab)).not.toContain(ids.xyPost);
      expect(ab.text).not.toContain(XY_TITLE);
    });

    it("another account's row by id is 404, byte for byte a missing row, on read, update and delete (4.10, 6.2)", async () => {
      const missing = await as("xy", "GET", "/api/data/posts/999999");
      expectNotFound(missing);
      for (const [method, body] of [
        ["GET", undefined],
        ["PATCH", { title: "taken over" }],
        ["DELETE", undefined],
      ] as const)
        await refused(
          () => as("xy", method, `/api/data/posts/${ids.editorDraft}`, body),
          (res) => {
            expectNotFound(res);
            expect(res.body).toEqual(missing.body);
          },
        );
      expectNotFound(await as("xy", "GET", `/api/data/users/${ids.user.admin}`));
      expectNotFound(await as("xy", "GET", `/api/data/accounts/${ids.AB}`));
      expectNotFound(await as("admin", "GET", `/api/data/comments/${ids.xyComment}`));
    });

    it('"GET /api/v1/posts?account_id=XY2048": the where only narrows to nothing (the page: 403, filter reset) (6.2)', async () => {
      const res = await ok("admin", "GET", `/api/data/posts?where=${q({ account_id: ids.XY })}`);
      expect(res.body).toMatchObject({ data: [], meta: { count: 0 } });
      const count = await ok("admin", "GET", `/api/data/posts/count?where=${q({ account_id: ids.XY })}`);
      expect(count.body.data.count).toBe(0);
      const either = await ok(
        "admin",
        "GET",
        `/api/data/posts?where=${q({ $or: [{ account_id: ids.XY }, { id: ids.xyPost }] })}`,
      );
      expect(either.body.data).toEqual([]);
    });

    it("a body naming account_id is 400; a link to another account's post answers as a missing one (6.2, 4.17)", async () => {
      await refused(
        () => as("admin", "POST", "/api/data/posts", { title: "planted", account_id: ids.XY }),
        (res) => expect(res.status, res.text).toBe(400),
      );
      await refused(
        () => as("admin", "PATCH", `/api/data/posts/${ids.editorDraft}`, { account_id: ids.XY }),
        (res) => expect(res.status, res.text).toBe(400),
      );
      const toMissing = await as("admin", "POST", "/api/data/comments", { body: "x", post_id: 999_999 });
      await refused(
        () => as("admin", "POST", "/api/data/comments", { body: "x", post_id: ids.xyPost }),
        (res) =>
          expect({ status: res.status, body: res.body }).toEqual({ status: toMissing.status, body: toMissing.body }),
      );
    });

    it("with: a related row of another account is never joined (4.5, 6.1)", async () => {
      const res = await ok("xy", "GET", `/api/data/comments?with=post`);
      expect(res.text).not.toContain("Editor's");
      const ab = await ok("admin", "GET", `/api/data/posts?with=comments`);
      expect(ab.text).not.toContain(IP_XY);
    });

    it("@is_superadmin(): the superadmin reaches every account (6.2)", async () => {
      const res = await ok("root", "GET", "/api/data/posts");
      expect(idsOf(res)).toContain(ids.xyPost);
      expect(idsOf(res)).toContain(ids.editorDraft);
    });
  });

  describe('Audit logging and best practice 4 "Use audit logs to track access"', () => {
    it("each mutation is an entry with its actor and account; a refused one leaves none (7.1, 7.2)", async () => {
      const res = await ok("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { title: "audited title" });
      const [entry] = await entries("admin", { action: "data.update", entity: "posts", row_id: ids.editorDraft });
      expect(entry).toMatchObject({
        action: "data.update",
        row_id: ids.editorDraft,
        account_id: ids.AB,
        actor: { user_id: ids.user.editor, role: "editor", account_id: ids.AB },
        request_id: res.headers.get("x-request-id"),
      });
      expect(entry!.changes.title[1]).toBe("audited title");
      await ok("editor", "PATCH", `/api/data/posts/${ids.editorDraft}`, { title: "Editor's draft" });
    });

    it("salary and ssn changes are recorded as [redacted] (7.2)", async () => {
      await patchedUser("hr", ids.user.author, { salary: SALARY.author + 1 });
      await patchedUser("hr", ids.user.author, { salary: SALARY.author });
      const [entry] = await entries("admin", { action: "data.update", entity: "users", row_id: ids.user.author });
      expect(entry!.changes.salary).toEqual(["[redacted]", "[redacted]"]);
      const created = await ok(
        "root",
        "GET",
        `/api/system/audit?where=${q({ action: "data.update", entity: "users" })}`,
      );
      expect(created.text).not.toContain(ssnOf("author"));
    });

    it("denials are entries too, and each account's admin reads its own account's trail only (7.1, 7.4)", async () => {
      await as("viewer", "DELETE", `/api/data/posts/${ids.editorDraft}`);
      const [denied] = await entries("admin", { action: "access.denied" });
      expect(denied).toMatchObject({ actor: { role: "viewer", account_id: ids.AB } });
      expect(denied!.reason).toContain("data.entity.delete");
      const xy = await entries("xy", {});
      for (const e of xy) expect(e.account_id).toBe(ids.XY);
      const ab = await entries("admin", {});
      for (const e of ab) expect(e.account_id).toBe(ids.AB);
      const editor = await as("editor", "GET", "/api/system/audit");
      expect(editor.status).toBe(403);
      expect(editor.body.error.permission).toBe("system.audit.read");
    });

    it("`citadel audit verify`: the chain of everything above checks out (7.3)", async () => {
      expect((await server.app.audit!.verify()).ok).toBe(true);
      let stdout = "";
      const code = await main(
        ["audit", "verify", "--config", "examples/accounts/config.ts", "--db", server.connection.url],
        {
          stdout: (text) => {
            stdout += text;
          },
          stderr: () => {},
          stdin: async () => undefined,
          prompt: async () => "",
          env: {},
        },
      );
      expect({ code, stdout }).toMatchObject({ code: 0, stdout: expect.stringContaining("audit trail OK") });
    });
  });

  describe('Best practice 7 "Monitor and Alert"', () => {
    it('"Repeated failed authorization attempts": counted per role, permission and entity, and in the trail (7.5)', async () => {
      const labels = { reason: "access_denied", role: "editor", entity: "posts", permission: DELETE };
      const before = (await scrape()).value("citadel_denials_total", labels);
      for (let i = 0; i < 3; i++) await as("editor", "DELETE", `/api/data/posts/${ids.editorPublished}`);
      expect((await scrape()).value("citadel_denials_total", labels) - before).toBe(3);
      const denied = (await entries("admin", { action: "access.denied", entity: "posts" })).filter(
        (e) => e.actor.role === "editor" && e.reason.includes(DELETE),
      );
      expect(denied.length).toBeGreaterThanOrEqual(3);
    });

    it('"Cross-account access attempts" are counted (6.5, 7.5)', async () => {
      const before = (await scrape()).value("citadel_cross_tenant_attempts_total");
      await as("xy", "GET", `/api/data/posts?where=${q({ account_id: ids.AB })}`);
      await as("xy", "GET", `/api/data/accounts/${ids.AB}`);
      expect((await scrape()).value("citadel_cross_tenant_attempts_total") - before).toBe(2);
    });

    it('"Permission escalation attempts": a user writing a role, an admin granting superadmin (7.5)', async () => {
      const before = (await scrape()).value("citadel_escalation_attempts_total");
      await refused(
        () => patchUser("hr", ids.user.hr, { role: "admin" }),
        (res) => expect(res.status, res.text).toBe(403),
      );
      await refused(
        () => as("admin", "POST", "/api/data/users", { email: "sneaky@ab1001.test", role: "superadmin" }),
        (res) => expect(res.status, res.text).toBe(403),
      );
      expect((await scrape()).value("citadel_escalation_attempts_total") - before).toBe(2);
    });

    it("account-bound callers may not read the metrics, which cover every account (7.5)", async () => {
      expect((await as("admin", "GET", "/api/system/metrics")).status).toBe(403);
    });
  });

  /*
   * GAP (src/auth/index.ts:400, publicUser → store.publicById; also the user object of login and register): the auth
   * routes answer the caller's own users row with every visible column, so the entity field rule
   * `ssn: { read: "@is_superadmin()" }` (no role of an account reads it) is not applied there: the viewer's
   * `GET /api/auth/me` carries the viewer's ssn, which every data route hides from it. Remove `.fails` once the
   * auth routes shape the user by the caller's read rules on users.
   */
  it("the auth routes' user object hides what the users' field rules hide: no ssn in /api/auth/me or a login (9.4, 4.10)", async () => {
    const me = await server.request("GET", "/api/auth/me", undefined, bearer(tokens.viewer));
    expect(me.status, me.text).toBe(200);
    expect(me.text).not.toContain(ssnOf("viewer"));
    const again = await server.request("POST", "/api/auth/password/login", {
      email: "viewer@ab1001.test",
      password: PASSWORD,
    });
    expect(again.text).not.toContain(ssnOf("viewer"));
  });

  it("no response of this file carried a value its reader may not read (4.8, 4.10, 6.1, 9.4)", () => {
    const others = (who: Person) => (Object.keys(PEOPLE) as Person[]).filter((p) => p !== who);
    const hidden = (who: Who): string[] => {
      if (who === "root")
        return (Object.keys(PEOPLE) as Person[]).filter((p) => p !== "root").map((p) => String(SALARY[p]));
      const account = who === "anon" || who === "pk" ? "AB1001" : PEOPLE[who].account;
      const out = (Object.keys(PEOPLE) as Person[]).map(ssnOf);
      // salaries: the admin reads its account's; others their own
      for (const p of Object.keys(PEOPLE) as Person[]) {
        const readable =
          who !== "anon" &&
          who !== "pk" &&
          (p === who || (who === "admin" || who === "xy" ? PEOPLE[p].account === account : false));
        if (!readable) out.push(String(SALARY[p]));
      }
      if (who !== "admin" && who !== "xy") out.push(IP_AB, IP_XY);
      if (who === "anon" || who === "pk") out.push(DRAFT_NOTES, INTERNAL);
      if (account === "AB1001") out.push(XY_TITLE, IP_XY, phoneOf("xy"));
      else out.push(...others("xy").map(phoneOf), IP_AB, "Editor's");
      if (who === "viewer") out.push(...(Object.keys(PEOPLE) as Person[]).map(phoneOf));
      return out;
    };
    expect(seen.length).toBeGreaterThan(100);
    for (const { who, what, text } of seen)
      for (const value of hidden(who)) expect(text.includes(value), `${value} in ${what} as ${who}`).toBe(false);
  });
});

/**
 * The page's "Rule Syntax" block, one line each as the read rule (a filter policy on posts) of a role of its own in
 * AB1001, over the example's schema and tenancy: each answers exactly the posts a reading of the line predicts.
 * `@has_role("x")` lines name the line's own role, which stands for x.
 */
describe('examples/accounts: the page\'s "Rule Syntax" lines, each a read rule on posts (9.1)', () => {
  type Post = { status: string; priority: number; mine: boolean };
  const POSTS: Post[] = [
    { status: "draft", priority: 1, mine: true },
    { status: "published", priority: 3, mine: true },
    { status: "archived", priority: 5, mine: true },
    { status: "draft", priority: 4, mine: false },
    { status: "locked", priority: 2, mine: false },
    { status: "published", priority: 5, mine: false },
  ];
  const ROLE = "@ROLE";
  /** the line (ROLE: the line's own role), and which posts its user may read */
  const LINES: [string, (p: Post) => boolean][] = [
    ['user.email == "line0@ab1001.test"', () => true],
    ['user.email == "someone@else.test"', () => false],
    [`@has_role("${ROLE}")`, () => true],
    ['@has_role("admin")', () => false],
    [`@has_any_role(["admin", "${ROLE}"])`, () => true],
    ["@owns_record()", (p) => p.mine],
    ['status in ["draft", "published"]', (p) => ["draft", "published"].includes(p.status)],
    ["priority >= 3", (p) => p.priority >= 3],
    ['@has_role("admin") or @owns_record()', (p) => p.mine],
    [`@has_role("${ROLE}") and status == "draft"`, (p) => p.status === "draft"],
    ['not status == "archived"', (p) => p.status !== "archived"],
    ['(@has_role("admin") or @owns_record()) and not status == "locked"', (p) => p.mine && p.status !== "locked"],
    [`(@has_role("${ROLE}") or @owns_record()) and not status == "locked"`, (p) => p.status !== "locked"],
    ["@is_superadmin()", () => false],
    ["context.account_id != null and priority < 3", (p) => p.priority < 3],
  ];
  let server: TestServer;
  /** per line: its posts' ids, and what each one is */
  const made: { id: number; post: Post }[][] = [];
  const tokens: string[] = [];

  beforeAll(async () => {
    const base = accounts.config!;
    const roles = Object.fromEntries(
      LINES.map(([rule], i) => [
        `line${i}`,
        {
          permissions: [
            {
              permission: READ,
              policies: [
                { condition: { entity: "posts" }, effect: "filter" as const, rule: rule.replace(ROLE, `line${i}`) },
              ],
            },
          ],
        },
      ]),
    );
    const config = testConfig({ ...base, auth: { ...base.auth, roles: { ...base.auth!.roles, ...roles } } });
    server = await startServer(config, {
      options: {
        seed: async ({ app }) => {
          const [ab] = (await app.module.data.create("accounts", [{ name: "AB1001", slug: "ab1001" }])) as Row[];
          const other = await app.module.auth.createUser({
            email: "other@ab1001.test",
            password: PASSWORD,
            role: "viewer",
            account_id: ab!.id,
          });
          for (const [i] of LINES.entries()) {
            const user = await app.module.auth.createUser({
              email: `line${i}@ab1001.test`,
              password: PASSWORD,
              role: `line${i}`,
              account_id: ab!.id,
            });
            const rows = (await app.module.data.create(
              "posts",
              POSTS.map((p) => ({
                title: `line ${i}: ${p.status} ${p.priority}`,
                status: p.status,
                priority: p.priority,
                author_id: p.mine ? user.id : other.id,
                account_id: ab!.id,
              })),
            )) as Row[];
            made.push(rows.map((r, k) => ({ id: r.id as number, post: POSTS[k]! })));
          }
        },
      },
    });
    for (const [i] of LINES.entries()) tokens.push(await login(server, `line${i}@ab1001.test`, PASSWORD));
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const [i, [rule, expected]] of LINES.entries())
    it(`\`${rule.replace(ROLE, "editor")}\` (9.1)`, async () => {
      const res = await server.request("GET", "/api/data/posts?limit=1000&sort=id", undefined, bearer(tokens[i]));
      expect(res.status, res.text).toBe(200);
      // "mine" is this line's user's; every other line's posts are someone else's
      const want = made.flatMap((rows, line) =>
        rows.filter(({ post }) => expected({ ...post, mine: post.mine && line === i })).map((r) => r.id),
      );
      expect(idsOf(res)).toEqual(sorted(want));
    });
});
