/**
 * §13 `examples/groups`: bkend's "Security Overview" page walked statement by statement over HTTP, as a guest (no
 * credentials), users A and B (the `user` group; `self` when a row is their own), an admin, a publishable key, a
 * publishable key with A's token and a secret key; every refused write is checked against the database itself
 * (§4.5, 4.6, 4.7, 4.8, 4.9, 4.14, 5.1–5.5, 10.1, 10.3).
 *
 * Not expressible, or not Citadel's to express (see also examples/groups/config.ts):
 * - "In-Transit Encryption: TLS 1.2 or higher": the proxy in front of the server terminates TLS.
 * - "MongoDB stored data: Atlas Encryption at Rest": the database's own disk encryption.
 * - `self` is a relation between a caller and a row, not a role: the `user` role's update and delete filtered by
 *   `$owner`; `createdBy` is `created_by_id` (Citadel's names are lowercase and a many-to-one's column ends in `_id`).
 */
import { createHash, randomBytes } from "node:crypto";
import { createApp } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import groups from "../../examples/groups/config.js";
import { bearer, login, register } from "../helpers/auth.js";
import {
  type Booted,
  boot,
  dbRows,
  expectForbidden,
  expectNotFound,
  idsOf,
  insert,
  principals,
  q,
  refusedWithout,
  sorted,
  testConfig,
} from "./helpers.js";

type Rows = Record<"postA" | "postB" | "commentA" | "commentB", number>;

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
/** How an encrypted value is stored: `enc:v1:<key id>:<base64 of IV | ciphertext | tag>` (§10.1). */
const SEALED = /^enc:v1:k1:[A-Za-z0-9+/]+={0,2}$/;
/** The example's encrypted fields need a key (§10.1); the server reads it from the environment, as in production. */
const ENCRYPTION_KEYS = `k1:${randomBytes(32).toString("base64")}`;

describe("examples/groups: bkend's Security Overview as Citadel groups (§13)", () => {
  let b: Booted<Rows>;
  let keys: { pk: string; sk: string; pkId: number; skId: number };
  /** who → headers: a guest, a user's token, the admin's, the publishable key (alone, with A's token), the secret key */
  const who: Record<string, () => Record<string, string>> = {
    guest: () => ({}),
    a: () => bearer(b.tokens.a),
    b: () => bearer(b.tokens.b),
    admin: () => bearer(b.tokens.admin),
    pk: () => ({ authorization: `Bearer ${keys.pk}` }),
    "pk + a": () => ({ apikey: keys.pk, ...bearer(b.tokens.a) }),
    sk: () => ({ authorization: `Bearer ${keys.sk}` }),
  };
  const { as, ok } = principals(() => b.server, who);
  /** Everything the database holds, to prove a refused write wrote nothing. */
  const database = async () => ({
    posts: await dbRows(b.server, "SELECT id, created_by_id, title, content FROM posts ORDER BY id"),
    comments: await dbRows(b.server, "SELECT id, created_by_id, post_id, body FROM comments ORDER BY id"),
    users: await dbRows(b.server, "SELECT id, email, role, name FROM users ORDER BY id"),
    connections: await dbRows(
      b.server,
      "SELECT id, created_by_id, name, host, credentials FROM connections ORDER BY id",
    ),
    keys: await dbRows(b.server, "SELECT id, revoked_at FROM citadel_api_keys ORDER BY id"),
  });
  /** `attempt` is refused as `check` says and the database is as it was. */
  const refused = refusedWithout(database);
  /** A fresh post of `owner`'s, made by trusted code, for tests that change or delete one. */
  const postOf = async (owner: string, title: string): Promise<number> => {
    const [row] = (await b.server.app.module.data.create("posts", [
      { title, content: `${title}: content`, created_by_id: b.ids[owner] },
    ])) as { id: number }[];
    return row!.id;
  };

  beforeAll(async () => {
    process.env.CITADEL_ENCRYPTION_KEYS = ENCRYPTION_KEYS;
    b = await boot(groups, {
      users: { admin: "admin", a: "user", b: "user" },
      rows: async (ctx, ids) => {
        const [postA, postB] = await insert(ctx, "posts", [
          { title: "A's post", content: "written by A", created_by_id: ids.a },
          { title: "B's post", content: "written by B", created_by_id: ids.b },
        ]);
        const [commentA, commentB] = await insert(ctx, "comments", [
          { body: "A on B's post", post_id: postB!.id, created_by_id: ids.a },
          { body: "B on A's post", post_id: postA!.id, created_by_id: ids.b },
        ]);
        return { postA: postA!.id, postB: postB!.id, commentA: commentA!.id, commentB: commentB!.id };
      },
    });
    // "Authentication keys generated from the console": the admin makes them over HTTP (5.5)
    const make = async (kind: string) => {
      const res = await b.server.request(
        "POST",
        "/api/system/keys",
        { name: `${kind} key`, kind },
        bearer(b.tokens.admin),
      );
      expect(res.status, res.text).toBe(201);
      return res.body.data as { id: number; key: string };
    };
    const [pk, sk] = [await make("publishable"), await make("secret")];
    keys = { pk: pk.key, sk: sk.key, pkId: pk.id, skId: sk.id };
    for (const name of ["a", "b"]) await ok(name, "PATCH", `/api/data/users/${b.ids[name]}`, { name: `user ${name}` });
  });
  afterAll(async () => {
    await b?.server.close();
    delete process.env.CITADEL_ENCRYPTION_KEYS;
  });

  describe('"To prevent users from editing or deleting other users\' posts, you need data access control"', () => {
    it("B editing or deleting A's post is 403 and changes nothing (4.5, 4.16, bkend: self)", async () => {
      await refused(
        () => as("b", "PATCH", `/api/data/posts/${b.rows.postA}`, { title: "hijacked by B" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("b", "DELETE", `/api/data/posts/${b.rows.postA}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
      await refused(
        () => as("b", "PATCH", `/api/data/comments/${b.rows.commentA}`, { body: "hijacked by B" }),
        (res) => expectForbidden(res, UPDATE, "comments"),
      );
    });

    it("B's update and delete of many rows with a where matching everything reach only B's rows (4.5, bkend: self)", async () => {
      const mine = await postOf("b", "B's to bulk-edit");
      const updated = await ok("b", "PATCH", "/api/data/posts", {
        update: { content: "bulk by B" },
        where: { id: { $gt: 0 } },
      });
      expect(idsOf(updated)).toEqual(sorted([b.rows.postB, mine]));
      const touched = await dbRows(b.server, "SELECT created_by_id FROM posts WHERE content = ?", "bulk by B");
      expect(touched).toEqual([{ created_by_id: b.ids.b }, { created_by_id: b.ids.b }]);
      const deleted = await ok("b", "DELETE", "/api/data/posts", { id: mine, title: { $like: "*" } });
      expect(idsOf(deleted)).toEqual([mine]);
      const none = await ok("b", "DELETE", "/api/data/posts", { id: b.rows.postA });
      expect(idsOf(none)).toEqual([]);
      expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", b.rows.postA)).toEqual([{ id: b.rows.postA }]);
    });
  });

  describe('Authentication: "API Key → API Key Verification", "JWT → JWT Verification"', () => {
    it('"Use them in the Authorization: Bearer {api_key} format": both kinds work as Bearer, and as apikey (5.3)', async () => {
      for (const name of ["pk", "sk"]) expect((await ok(name, "GET", "/api/data/posts")).status).toBe(200);
      const viaHeader = await b.server.request("GET", "/api/data/posts", undefined, { apikey: keys.pk });
      expect(viaHeader.status, viaHeader.text).toBe(200);
    });

    it('a key that fails "API Key Verification" (unknown, or a publishable key\'s altered tail) is the one 401, never a guest (5.4)', async () => {
      const unknown = `pk_live_${"x".repeat(55)}`;
      const altered = keys.pk.slice(0, -1) + (keys.pk.endsWith("a") ? "b" : "a");
      for (const key of [unknown, altered, `sk_live_${"y".repeat(55)}`]) {
        const res = await b.server.request("GET", "/api/data/posts", undefined, { authorization: `Bearer ${key}` });
        expect({ key, status: res.status, body: res.body }).toEqual({
          key,
          status: 401,
          body: { error: { code: "unauthorized", message: "invalid or missing API key" } },
        });
      }
    });

    it('"JWT Tokens: issued when a user signs in": registering gives a token of the user group, signing in another (3, bkend: user)', async () => {
      const reg = await register(b.server, "carol@test.com", "carol-password");
      expect(reg.user).toMatchObject({ email: "carol@test.com", role: "user" });
      const token = await login(b.server, "carol@test.com", "carol-password");
      for (const t of [reg.token, token]) {
        const created = await b.server.request("POST", "/api/data/posts", { title: "carol's" }, bearer(t));
        expect(created.status, created.text).toBe(201);
        expect(created.body.data.created_by_id).toBe(reg.user.id);
      }
    });

    it('a token that fails "JWT Verification" (tampered, garbage) is 401, never silently a guest (4.1, 4.9)', async () => {
      const [head, payload, signature] = b.tokens.a!.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url");
      for (const token of [`${head}.${forged}.${signature}`, "not-a-jwt", `${b.tokens.a}x`]) {
        const res = await b.server.request("GET", "/api/data/posts", undefined, bearer(token));
        expect({ token, status: res.status }).toEqual({ token, status: 401 });
        expect(res.text).not.toContain("A's post");
      }
    });
  });

  describe('Authorization (RLS): "admin — Administrator — All permissions"', () => {
    it("the admin creates, reads, updates and deletes any row, names any owner and reads users' emails (4.7)", async () => {
      const created = await ok("admin", "POST", "/api/data/posts", { title: "for A", created_by_id: b.ids.a });
      expect(created.body.data).toMatchObject({ title: "for A", created_by_id: b.ids.a });
      const own = await ok("admin", "POST", "/api/data/posts", { title: "the admin's" });
      expect(own.body.data.created_by_id).toBe(b.ids.admin);
      await ok("admin", "PATCH", `/api/data/posts/${b.rows.postB}`, { content: "edited by the admin" });
      await ok("admin", "DELETE", `/api/data/posts/${created.body.data.id}`);
      const users = await ok("admin", "GET", "/api/data/users");
      expect(users.body.data).toEqual(
        expect.arrayContaining([expect.objectContaining({ id: b.ids.a, email: "a@test.com", role: "user" })]),
      );
      expect(await database()).toMatchObject({
        posts: expect.arrayContaining([expect.objectContaining({ id: b.rows.postB, content: "edited by the admin" })]),
      });
      expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", created.body.data.id)).toEqual([]);
    });

    it("the admin manages API keys (5.5); a user, a guest and a publishable key may not (403, nothing written)", async () => {
      const list = await ok("admin", "GET", "/api/system/keys");
      expect(list.body.data.map((k: { id: number }) => k.id)).toEqual(expect.arrayContaining([keys.pkId, keys.skId]));
      for (const name of ["a", "guest", "pk", "pk + a"]) {
        expect({ name, status: (await as(name, "GET", "/api/system/keys")).status }).toEqual({ name, status: 403 });
        await refused(
          () => as(name, "POST", "/api/system/keys", { name: "mine", kind: "secret" }),
          (res) => expect({ name, status: res.status }).toEqual({ name, status: 403 }),
        );
      }
    });
  });

  describe('Authorization (RLS): "user — Authenticated user — Create, read, list"', () => {
    it("a user reads and lists every post and comment, others' included, and meta counts them (4.5)", async () => {
      const posts = await ok("a", "GET", "/api/data/posts");
      expect(idsOf(posts)).toEqual(expect.arrayContaining([b.rows.postA, b.rows.postB]));
      const [{ n }] = (await dbRows(b.server, "SELECT count(*) AS n FROM posts")) as [{ n: number }];
      expect(posts.body.meta.total).toBe(n);
      expect((await ok("a", "GET", `/api/data/posts/${b.rows.postB}`)).body.data.title).toBe("B's post");
      const comments = await ok("a", "GET", `/api/data/posts/${b.rows.postA}/comments`);
      expect(idsOf(comments)).toEqual([b.rows.commentB]);
    });

    it("a user creates posts and comments; the server sets createdBy (created_by_id) to the user (4.14)", async () => {
      const post = await ok("a", "POST", "/api/data/posts", { title: "A's new post" });
      expect(post.status).toBe(201);
      const comment = await ok("a", "POST", "/api/data/comments", { body: "A's comment", post_id: b.rows.postB });
      const stored = await dbRows(b.server, "SELECT created_by_id FROM posts WHERE id = ?", post.body.data.id);
      expect(stored).toEqual([{ created_by_id: b.ids.a }]);
      const storedComment = await dbRows(
        b.server,
        "SELECT created_by_id FROM comments WHERE id = ?",
        comment.body.data.id,
      );
      expect(storedComment).toEqual([{ created_by_id: b.ids.a }]);
    });

    it("a user creating a row whose createdBy is another user is 403 and writes nothing, alone or in a batch (4.6, 4.14)", async () => {
      await refused(
        () => as("a", "POST", "/api/data/posts", { title: "B's, by A", created_by_id: b.ids.b }),
        (res) => expectForbidden(res, CREATE, "posts"),
      );
      await refused(
        () =>
          as("a", "POST", "/api/data/comments", [
            { body: "fine", post_id: b.rows.postA },
            { body: "B's", post_id: b.rows.postA, created_by_id: b.ids.b },
          ]),
        (res) => expectForbidden(res, CREATE, "comments"),
      );
    });

    it("a user's default permissions stop at create, read and list of the app's tables: no users created (403)", async () => {
      await refused(
        () => as("a", "POST", "/api/data/users", { email: "x@test.com" }),
        (res) => expectForbidden(res, CREATE, "users"),
      );
    });
  });

  describe('Authorization (RLS): "guest — Unauthenticated user — Read, list"', () => {
    it("a guest reads one post and lists posts and comments, as a user does", async () => {
      const posts = await ok("guest", "GET", "/api/data/posts");
      expect(idsOf(posts)).toEqual(idsOf(await ok("a", "GET", "/api/data/posts")));
      expect((await ok("guest", "GET", `/api/data/posts/${b.rows.postA}`)).body.data.title).toBe("A's post");
      const comments = await ok("guest", "GET", `/api/data/comments?where=${q({ post_id: b.rows.postB })}`);
      const onB = await dbRows(b.server, "SELECT id FROM comments WHERE post_id = ? ORDER BY id", b.rows.postB);
      expect(idsOf(comments)).toEqual(onB.map((row) => row.id));
      expect(idsOf(comments)).toContain(b.rows.commentA);
      expect((await ok("guest", "GET", "/api/data/posts/count")).body.data.count).toBe(posts.body.meta.total);
    });

    it("a guest cannot create, update or delete: 403 naming the permission, nothing written (4.9, 4.14)", async () => {
      await refused(
        () => as("guest", "POST", "/api/data/posts", { title: "anonymous" }),
        (res) => expectForbidden(res, CREATE, "posts"),
      );
      await refused(
        () => as("guest", "POST", "/api/data/posts", { title: "anonymous", created_by_id: b.ids.a }),
        (res) => expectForbidden(res, CREATE, "posts"),
      );
      await refused(
        () => as("guest", "PATCH", `/api/data/posts/${b.rows.postA}`, { title: "defaced" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("guest", "PATCH", "/api/data/comments", { update: { body: "defaced" }, where: { id: { $gt: 0 } } }),
        (res) => expectForbidden(res, UPDATE, "comments"),
      );
      await refused(
        () => as("guest", "DELETE", `/api/data/comments/${b.rows.commentA}`),
        (res) => expectForbidden(res, DELETE, "comments"),
      );
    });
  });

  describe('Authorization (RLS): "self — Own data — Access based on createdBy"', () => {
    it("the owner updates and deletes their own post and comment (4.14, bkend: self)", async () => {
      const post = await postOf("a", "A's to edit");
      const res = await ok("a", "PATCH", `/api/data/posts/${post}`, { content: "edited by its creator" });
      expect(res.body.data).toMatchObject({ id: post, content: "edited by its creator", created_by_id: b.ids.a });
      await ok("a", "PATCH", `/api/data/comments/${b.rows.commentA}`, { body: "A edits own comment" });
      await ok("a", "DELETE", `/api/data/posts/${post}`);
      expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", post)).toEqual([]);
      expect(await dbRows(b.server, "SELECT body FROM comments WHERE id = ?", b.rows.commentA)).toEqual([
        { body: "A edits own comment" },
      ]);
    });

    it("the owner cannot hand a row to another user (createdBy = B): 403, one row or many, nothing written (4.6)", async () => {
      await refused(
        () => as("a", "PATCH", `/api/data/posts/${b.rows.postA}`, { created_by_id: b.ids.b }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("a", "PATCH", "/api/data/posts", { update: { created_by_id: b.ids.b }, where: { id: { $gt: 0 } } }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("a", "PATCH", `/api/data/posts/${b.rows.postA}`, { created_by_id: null }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });

    it("a user is self on their own users row: renames it, never another's, never their own email or role (4.8)", async () => {
      const res = await ok("a", "PATCH", `/api/data/users/${b.ids.a}`, { name: "Alice" });
      expect(res.body.data).toMatchObject({ id: b.ids.a, name: "Alice" });
      await refused(
        () => as("a", "PATCH", `/api/data/users/${b.ids.b}`, { name: "renamed by A" }),
        (r) => expectForbidden(r, UPDATE, "users"),
      );
      for (const body of [{ email: "alice@evil.test" }, { role: "admin" }])
        await refused(
          () => as("a", "PATCH", `/api/data/users/${b.ids.a}`, body),
          (r) => expect(r.status, r.text).toBe(403),
        );
    });
  });

  describe('"fine-grained permissions at the Row and Column level": users\' public columns', () => {
    it("guests, users and the publishable key read users' id and name only; email and role are the admin's (4.8)", async () => {
      for (const name of ["guest", "a", "pk"]) {
        const res = await ok(name, "GET", `/api/data/users/${b.ids.b}`);
        expect({ name, user: res.body.data }).toEqual({ name, user: { id: b.ids.b, name: "user b" } });
        const list = await ok(name, "GET", `/api/data/posts/${b.rows.postB}?with=created_by`);
        expect({ name, creator: list.body.data.created_by }).toEqual({
          name,
          creator: { id: b.ids.b, name: "user b" },
        });
        expect(list.text).not.toContain("@test.com");
      }
    });

    it("filtering or sorting on users' email is 400 for them: no oracle (4.8)", async () => {
      for (const name of ["guest", "a"]) {
        const where = await as(name, "GET", `/api/data/users?where=${q({ email: { $like: "a*" } })}`);
        expect({ name, status: where.status }).toEqual({ name, status: 400 });
        const sort = await as(name, "GET", "/api/data/users?sort=email");
        expect({ name, status: sort.status }).toEqual({ name, status: 400 });
      }
    });
  });

  describe('"Publishable Key: Used on the client side (limited permissions)"', () => {
    it("alone, it is a guest: it reads and lists, and every write is 403 with nothing written (5.1)", async () => {
      expect(idsOf(await ok("pk", "GET", "/api/data/posts"))).toEqual(
        idsOf(await ok("guest", "GET", "/api/data/posts")),
      );
      await refused(
        () => as("pk", "POST", "/api/data/posts", { title: "from a page" }),
        (res) => expectForbidden(res, CREATE, "posts"),
      );
      await refused(
        () => as("pk", "PATCH", `/api/data/posts/${b.rows.postA}`, { title: "from a page" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
      await refused(
        () => as("pk", "DELETE", `/api/data/posts/${b.rows.postA}`),
        (res) => expectForbidden(res, DELETE, "posts"),
      );
    });

    it("with a user's token alongside, the user's group applies: create as A, edit A's own rows, not B's (5.1, 5.3)", async () => {
      const created = await ok("pk + a", "POST", "/api/data/posts", { title: "A via the page" });
      expect(created.body.data.created_by_id).toBe(b.ids.a);
      await ok("pk + a", "PATCH", `/api/data/posts/${created.body.data.id}`, { content: "edited via the page" });
      await refused(
        () => as("pk + a", "PATCH", `/api/data/posts/${b.rows.postB}`, { content: "A via the page" }),
        (res) => expectForbidden(res, UPDATE, "posts"),
      );
    });
  });

  describe('"Secret Key: Used on the server side only (full permissions)"', () => {
    it("it creates rows for any user, edits and deletes anyone's rows and reads users' emails (5.1)", async () => {
      const created = await ok("sk", "POST", "/api/data/posts", {
        title: "for B, by a server",
        created_by_id: b.ids.b,
      });
      expect(created.body.data).toMatchObject({ created_by_id: b.ids.b });
      await ok("sk", "PATCH", `/api/data/posts/${b.rows.postA}`, { content: "edited by a server" });
      await ok("sk", "PATCH", `/api/data/posts/${created.body.data.id}`, { created_by_id: b.ids.a });
      const doomed = await postOf("b", "B's to delete by a server");
      await ok("sk", "DELETE", `/api/data/posts/${doomed}`);
      expect(await database()).toMatchObject({
        posts: expect.arrayContaining([
          expect.objectContaining({ id: b.rows.postA, content: "edited by a server" }),
          expect.objectContaining({ id: created.body.data.id, created_by_id: b.ids.a }),
        ]),
      });
      expect(await dbRows(b.server, "SELECT id FROM posts WHERE id = ?", doomed)).toEqual([]);
      const user = await ok("sk", "GET", `/api/data/users/${b.ids.a}`);
      expect(user.body.data).toMatchObject({ email: "a@test.com" });
    });

    it("a row a server creates without createdBy has no owner, so it is no user's self: users cannot edit it (4.4, 4.14)", async () => {
      const created = await ok("sk", "POST", "/api/data/posts", { title: "by a server, for no one" });
      const id = created.body.data.id;
      expect(await dbRows(b.server, "SELECT created_by_id FROM posts WHERE id = ?", id)).toEqual([
        { created_by_id: null },
      ]);
      for (const name of ["a", "b", "pk + a"])
        await refused(
          () => as(name, "PATCH", `/api/data/posts/${id}`, { title: `claimed by ${name}` }),
          (res) => expectForbidden(res, UPDATE, "posts"),
        );
      expect((await ok("guest", "GET", `/api/data/posts/${id}`)).body.data.title).toBe("by a server, for no one");
    });

    it('"you must use Secret Keys only in server environments": sent by a page (Origin) it is 401 and writes nothing (5.4)', async () => {
      await refused(
        () =>
          b.server.request(
            "POST",
            "/api/data/posts",
            { title: "from a browser" },
            { ...who.sk!(), origin: "https://app.example.com" },
          ),
        (res) => {
          expect(res.status, res.text).toBe(401);
          expect(res.body).toEqual({ error: { code: "unauthorized", message: "invalid or missing API key" } });
        },
      );
    });

    it('"Publishable Keys are safe to expose on the client side": one sent by a page works, as a guest (5.1)', async () => {
      const res = await b.server.request("GET", "/api/data/posts", undefined, {
        apikey: keys.pk,
        origin: "https://app.example.com",
      });
      expect(res.status, res.text).toBe(200);
      expect(idsOf(res)).toEqual(idsOf(await ok("guest", "GET", "/api/data/posts")));
    });
  });

  describe("At-Rest Encryption", () => {
    it('"API keys: SHA-256 hash (one-way)": the table holds the key\'s SHA-256 digest and never the key (5.2)', async () => {
      const stored = await dbRows(
        b.server,
        "SELECT * FROM citadel_api_keys WHERE id IN (?, ?) ORDER BY id",
        keys.pkId,
        keys.skId,
      );
      expect(stored.map((row) => row.hash)).toEqual([sha256(keys.pk), sha256(keys.sk)]);
      const text = JSON.stringify(stored);
      for (const key of [keys.pk, keys.sk]) expect(text).not.toContain(key);
      const listed = await ok("admin", "GET", "/api/system/keys");
      for (const key of [keys.pk, keys.sk]) expect(listed.text).not.toContain(key);
      expect(listed.text).not.toContain(sha256(keys.pk));
    });

    it('"Passwords: Argon2id": every stored password is an argon2id hash, and no route shows it (3.1)', async () => {
      const users = await dbRows(b.server, "SELECT password_hash FROM users ORDER BY id");
      expect(users.length).toBeGreaterThan(0);
      for (const { password_hash } of users) expect(password_hash).toMatch(/^\$argon2id\$v=19\$/);
      const listed = await ok("admin", "GET", "/api/data/users");
      expect(listed.text).not.toContain("$argon2id$");
      expect(listed.body.data[0]).not.toHaveProperty("password_hash");
    });
  });

  describe('At-Rest Encryption: "Database connection credentials — AES-256-GCM (application level)"', () => {
    const A_CONNECTION = {
      name: "A's database",
      host: "db-a.internal",
      credentials: "postgres://app:a-s3cret@db-a/app",
    };
    /** A's connection, created over HTTP by A (self). */
    const connectionOfA = async (overrides: Record<string, string> = {}) => {
      const res = await ok("a", "POST", "/api/data/connections", { ...A_CONNECTION, ...overrides });
      expect(res.status).toBe(201);
      return res.body.data as { id: number } & typeof A_CONNECTION;
    };

    it("the table holds AES-256-GCM ciphertext under the key's id, a fresh IV each; the owner reads plaintext (10.1, 4.14)", async () => {
      const first = await connectionOfA();
      expect(first).toMatchObject({ ...A_CONNECTION, created_by_id: b.ids.a });
      const second = await connectionOfA({ name: "A's replica" });
      const stored = await dbRows(
        b.server,
        "SELECT host, credentials FROM connections WHERE id IN (?, ?) ORDER BY id",
        first.id,
        second.id,
      );
      for (const row of stored) for (const value of Object.values(row)) expect(value).toMatch(SEALED);
      expect(JSON.stringify(stored)).not.toContain("a-s3cret");
      expect(JSON.stringify(stored)).not.toContain("db-a.internal");
      // the same plaintext twice is two different ciphertexts
      expect(stored[0]!.credentials).not.toBe(stored[1]!.credentials);
      const read = await ok("a", "GET", `/api/data/connections/${first.id}`);
      expect(read.body.data).toMatchObject(A_CONNECTION);
    });

    it("who reads them is still the guard's: self, the admin and the secret key read plaintext; B 404s; guests 403 (4.5, 4.9)", async () => {
      const { id } = await connectionOfA();
      for (const name of ["a", "pk + a", "admin", "sk"]) {
        const res = await ok(name, "GET", `/api/data/connections/${id}`);
        expect({ name, credentials: res.body.data.credentials }).toEqual({
          name,
          credentials: A_CONNECTION.credentials,
        });
      }
      const hidden = await as("b", "GET", `/api/data/connections/${id}`);
      expectNotFound(hidden);
      expect(hidden.text).toBe((await as("b", "GET", "/api/data/connections/999999")).text);
      const list = await ok("b", "GET", "/api/data/connections");
      const ofB = await dbRows(b.server, "SELECT id FROM connections WHERE created_by_id = ? ORDER BY id", b.ids.b);
      expect(idsOf(list)).toEqual(ofB.map((row) => row.id));
      expect(list.text).not.toContain("a-s3cret");
      for (const name of ["guest", "pk"]) {
        expectForbidden(await as(name, "GET", "/api/data/connections"), READ, "connections");
        expectForbidden(await as(name, "GET", `/api/data/connections/${id}`), READ, "connections");
      }
    });

    it("no oracle: credentials are never filtered or sorted on (400); host only by equality, inside what the caller reads (10.3, 4.3a)", async () => {
      const { id } = await connectionOfA();
      for (const [name, params] of [
        ["a", `where=${q({ credentials: A_CONNECTION.credentials })}`],
        ["b", `where=${q({ credentials: { $like: "postgres*" } })}`],
        ["b", `where=${q({ host: { $like: "db-a*" } })}`],
        ["a", "sort=host"],
        ["admin", "sort=-credentials"],
      ] as const) {
        const res = await as(name, "GET", `/api/data/connections?${params}`);
        expect({ name, params, status: res.status }).toEqual({ name, params, status: 400 });
        expect(res.text).not.toContain("a-s3cret");
      }
      const byHost = `where=${q({ host: A_CONNECTION.host })}`;
      const own = await ok("a", "GET", `/api/data/connections?${byHost}`);
      expect(idsOf(own)).toContain(id);
      const ownIds = await dbRows(b.server, "SELECT id FROM connections WHERE created_by_id = ? ORDER BY id", b.ids.a);
      expect(idsOf(own)).toEqual(ownIds.map((row) => row.id));
      expect(idsOf(await ok("admin", "GET", `/api/data/connections?${byHost}`))).toEqual(idsOf(own));
      expect(idsOf(await ok("b", "GET", `/api/data/connections?${byHost}`))).toEqual([]);
      const count = await ok("b", "GET", `/api/data/connections/count?${byHost}`);
      expect(count.body.data).toEqual({ count: 0 });
    });

    it("self updates its credentials (sealed anew); B's update or delete of A's connection is 404 and changes nothing (4.5, 10.1)", async () => {
      const { id } = await connectionOfA();
      const [before] = await dbRows(b.server, "SELECT credentials FROM connections WHERE id = ?", id);
      const res = await ok("a", "PATCH", `/api/data/connections/${id}`, {
        credentials: "postgres://app:rotated@db-a/app",
      });
      expect(res.body.data).toMatchObject({ id, credentials: "postgres://app:rotated@db-a/app" });
      const [after] = await dbRows(b.server, "SELECT credentials FROM connections WHERE id = ?", id);
      expect(after!.credentials).toMatch(SEALED);
      expect(after!.credentials).not.toBe(before!.credentials);
      expect(after!.credentials).not.toContain("rotated");
      await refused(() => as("b", "PATCH", `/api/data/connections/${id}`, { credentials: "stolen" }), expectNotFound);
      await refused(() => as("b", "DELETE", `/api/data/connections/${id}`), expectNotFound);
      await refused(
        () => as("guest", "POST", "/api/data/connections", { name: "x", credentials: "y" }),
        (r) => expectForbidden(r, CREATE, "connections"),
      );
      await refused(
        () => as("a", "POST", "/api/data/connections", { name: "for B", credentials: "y", created_by_id: b.ids.b }),
        (r) => expectForbidden(r, CREATE, "connections"),
      );
    });

    it("a stored credential altered behind the server's back is a 409 naming the field, never garbage (10.1)", async () => {
      const { id } = await connectionOfA({ name: "to tamper with" });
      const [row] = await dbRows(b.server, "SELECT credentials FROM connections WHERE id = ?", id);
      const sealed = row!.credentials as string;
      const body = Buffer.from(sealed.split(":")[3]!, "base64");
      body[16] = body[16]! ^ 1;
      const tampered = `enc:v1:k1:${body.toString("base64")}`;
      await dbRows(b.server, "UPDATE connections SET credentials = ? WHERE id = ?", tampered, id);
      for (const name of ["a", "admin"]) {
        const res = await as(name, "GET", `/api/data/connections/${id}`);
        expect({ name, status: res.status, error: res.body.error }).toMatchObject({
          name,
          status: 409,
          error: { code: "conflict", entity: "connections", field: "credentials" },
        });
        expect(res.text).not.toContain("a-s3cret");
      }
      await dbRows(b.server, "DELETE FROM connections WHERE id = ?", id);
    });

    it("without an encryption key the example refuses to start, naming the field and CITADEL_ENCRYPTION_KEYS (10.1)", async () => {
      await expect(
        createApp({
          connection: { url: ":memory:" },
          config: testConfig(groups.config),
          options: { encryptionKeys: "" },
        }),
      ).rejects.toThrow(/connections\.(host|credentials) is encrypted.*CITADEL_ENCRYPTION_KEYS/);
    });
  });
});
