/**
 * §13 `examples/rules`: Space Cloud's "Securing your project" page walked statement by statement over HTTP, as
 * anonymous (no token), a publishable key (no user), users A and B, and an admin; every refused write is checked
 * against the database itself (§4.1, 4.3, 4.3a, 4.4, 4.5, 4.6, 4.9, 4.10, 9.1, 9.2).
 *
 * The projects: P1 has A as a member, P2 has B, P3 has both; the admin is a member of none. Tasks: A's in P1 and
 * P3, B's in P2 and P3.
 *
 * Not expressible, or expressed differently (see also examples/rules/config.ts):
 * - `allow` does not switch authentication off: a token that fails verification is 401 there too (§4.1).
 * - `match` and `query` decide per row: lists hold the rows where they hold, other rows are 404 (§4.5).
 * - Claims of one's own choosing come from an external identity provider (`auth.jwt.jwks`); Citadel's tokens
 *   carry id, email and role.
 * - The page shows no field-level and no `force`/`remove` rule; nothing in Citadel rewrites a request's values.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import rules, * as kinds from "../../examples/rules/config.js";
import { bearer, login, register } from "../helpers/auth.js";
import type { TestResponse } from "../helpers/server.js";
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
} from "./helpers.js";

type Rows = Record<"announcement" | "p1" | "p2" | "p3" | "taskA1" | "taskB2" | "taskA3" | "taskB3", number>;

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

describe("examples/rules: Space Cloud's Securing your project as Citadel rules (§13, 9.2)", () => {
  let b: Booted<Rows>;
  let pk: string;
  /** who → headers: nobody, the publishable key, users A and B, the admin */
  const who: Record<string, () => Record<string, string>> = {
    anon: () => ({}),
    pk: () => ({ authorization: `Bearer ${pk}` }),
    a: () => bearer(b.tokens.a),
    b: () => bearer(b.tokens.b),
    admin: () => bearer(b.tokens.admin),
  };
  const EVERYONE = Object.keys(who);
  const { as, ok } = principals(() => b.server, who);
  /** Everything the database holds, to prove a refused write wrote nothing. */
  const database = async () => ({
    announcements: await dbRows(b.server, "SELECT id, title, body FROM announcements ORDER BY id"),
    projects: await dbRows(b.server, "SELECT id, name FROM projects ORDER BY id"),
    members: await dbRows(b.server, "SELECT id, project_id, user_id FROM members ORDER BY id"),
    tasks: await dbRows(b.server, "SELECT id, title, done, project_id, author_id FROM tasks ORDER BY id"),
    users: await dbRows(b.server, "SELECT id, email, role FROM users ORDER BY id"),
  });
  /** `attempt` is refused as `check` says and the database is as it was. */
  const refused = refusedWithout(database);
  const forbidden = (permission: string, entity: string) => (res: TestResponse) =>
    expectForbidden(res, permission, entity);

  beforeAll(async () => {
    b = await boot(rules, {
      users: { admin: "admin", a: "user", b: "user" },
      rows: async (ctx, ids) => {
        const [announcement] = await insert(ctx, "announcements", [{ title: "Welcome", body: "to everyone" }]);
        const [p1, p2, p3] = await insert(ctx, "projects", [{ name: "P1" }, { name: "P2" }, { name: "P3" }]);
        await insert(ctx, "members", [
          { project_id: p1!.id, user_id: ids.a },
          { project_id: p2!.id, user_id: ids.b },
          { project_id: p3!.id, user_id: ids.a },
          { project_id: p3!.id, user_id: ids.b },
        ]);
        const [taskA1, taskB2, taskA3, taskB3] = await insert(ctx, "tasks", [
          { title: "A in P1", project_id: p1!.id, author_id: ids.a },
          { title: "B in P2", project_id: p2!.id, author_id: ids.b },
          { title: "A in P3", project_id: p3!.id, author_id: ids.a },
          { title: "B in P3", project_id: p3!.id, author_id: ids.b },
        ]);
        return {
          announcement: announcement!.id,
          p1: p1!.id,
          p2: p2!.id,
          p3: p3!.id,
          taskA1: taskA1!.id,
          taskB2: taskB2!.id,
          taskA3: taskA3!.id,
          taskB3: taskB3!.id,
        };
      },
    });
    // the admin makes a publishable key over HTTP (its `system.keys.manage`, 5.5): a credential with no user
    const key = await b.server.request(
      "POST",
      "/api/system/keys",
      { name: "web", kind: "publishable" },
      bearer(b.tokens.admin),
    );
    expect(key.status, key.text).toBe(201);
    pk = key.body.data.key;
  });
  afterAll(async () => {
    await b?.server.close();
  });

  describe('"How JWT is used"', () => {
    it('"space-cloud looks for the JWT token in the Authorization header": with it A is A, without it anonymous (4.1)', async () => {
      const mine = await ok("a", "GET", "/api/data/tasks");
      expect(idsOf(mine)).toEqual(sorted([b.rows.taskA1, b.rows.taskA3, b.rows.taskB3]));
      expect(idsOf(await ok("anon", "GET", "/api/data/tasks"))).toEqual([]);
    });

    it('"verify if the signature of the token is valid": a forged or garbled token is 401, never anonymous, even where `allow` holds (4.1, 4.9)', async () => {
      const [head, payload, signature] = b.tokens.a!.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      const forged = (extra: Record<string, unknown>) =>
        `${head}.${Buffer.from(JSON.stringify({ ...claims, ...extra })).toString("base64url")}.${signature}`;
      // "The integrity of the auth variable is maintained": neither the role nor the id can be changed
      const tokens = [forged({ role: "admin" }), forged({ id: b.ids.b, sub: String(b.ids.b) }), "not-a-jwt"];
      for (const token of tokens)
        for (const path of ["/api/data/announcements", "/api/data/tasks", "/api/data/projects"]) {
          const res = await b.server.request("GET", path, undefined, bearer(token));
          expect({ token, path, status: res.status }).toEqual({ token, path, status: 401 });
          expect(res.text).not.toContain("Welcome");
        }
      await refused(
        () => b.server.request("POST", "/api/data/announcements", { title: "forged" }, bearer(tokens[0])),
        (res) => expect(res.status, res.text).toBe(401),
      );
    });

    it('"Every module (except user management) performs authentication": registering and signing in need no token (3)', async () => {
      const reg = await register(b.server, "carol@test.com", "carol-password");
      expect(reg.user).toMatchObject({ email: "carol@test.com", role: "user" });
      const token = await login(b.server, "carol@test.com", "carol-password");
      // carol is authenticated (she reads members) but a member of nothing (no project, no task)
      const members = await b.server.request("GET", "/api/data/members", undefined, bearer(token));
      expect(members.status, members.text).toBe(200);
      const projects = await b.server.request("GET", "/api/data/projects", undefined, bearer(token));
      expect(idsOf(projects)).toEqual([]);
    });

    it('"claims … made available as the args.auth variable": user.role comes from the token, and only the admin\'s says admin (4.4, 9.1)', async () => {
      const me = await ok("admin", "GET", "/api/auth/me");
      expect(me.body.user).toMatchObject({ id: b.ids.admin, role: "admin" });
      const created = await ok("admin", "POST", "/api/data/announcements", { title: "From the admin" });
      await ok("admin", "DELETE", `/api/data/announcements/${created.body.data.id}`);
    });
  });

  describe('"Access to any database not specified in the configuration file is denied by default"', () => {
    it("users has no rule but the admins' read: every other principal is 403 on it, and writes change nothing (4.3, 4.9)", async () => {
      for (const name of EVERYONE) {
        if (name !== "admin") {
          expectForbidden(await as(name, "GET", "/api/data/users"), READ, "users");
          expectForbidden(await as(name, "GET", `/api/data/users/${b.ids.a}`), READ, "users");
        }
        await refused(
          () => as(name, "PATCH", `/api/data/users/${b.ids.a}`, { role: "admin" }),
          (res) => expect({ name, status: res.status }).toEqual({ name, status: 403 }),
        );
      }
    });

    it("the admin reads users' id and email, the users a membership may name (4.8, 4.17)", async () => {
      const users = await ok("admin", "GET", "/api/data/users");
      expect(users.body.data).toEqual(
        expect.arrayContaining(["admin", "a", "b"].map((name) => ({ id: b.ids[name], email: `${name}@test.com` }))),
      );
      for (const user of users.body.data) expect(Object.keys(user).sort()).toEqual(["email", "id"]);
      await refused(
        () => as("admin", "POST", "/api/data/members", { project_id: b.rows.p1, user_id: 999_999 }),
        (res) => expect(res.status).toBe(409),
      );
    });
  });

  describe('allow: "the request is allowed to be made even if the JWT token is absent" (9.2, Space Cloud: allow)', () => {
    it("allow: every principal reads announcements, with or without a token or key (9.2, 4.2, Space Cloud: allow)", async () => {
      for (const name of EVERYONE) {
        const list = await ok(name, "GET", "/api/data/announcements");
        expect({ name, ids: idsOf(list) }).toEqual({ name, ids: [b.rows.announcement] });
        const one = await ok(name, "GET", `/api/data/announcements/${b.rows.announcement}`);
        expect(one.body.data).toMatchObject({ title: "Welcome", body: "to everyone" });
      }
    });

    it("allow grants the operation it is written for only: without a user, writing an announcement is 403 (9.2, 4.3)", async () => {
      for (const name of ["anon", "pk"]) {
        await refused(
          () => as(name, "POST", "/api/data/announcements", { title: "by nobody" }),
          forbidden(CREATE, "announcements"),
        );
        await refused(
          () => as(name, "DELETE", `/api/data/announcements/${b.rows.announcement}`),
          forbidden(DELETE, "announcements"),
        );
      }
    });
  });

  describe('authenticated: "allow the request if a valid JWT token is found … no checks beyond that" (9.2)', () => {
    it("authenticated: A, B and the admin each read every membership, whoever it is of (9.2, Space Cloud: authenticated)", async () => {
      const all = (await database()).members.map((m) => m.id as number);
      for (const name of ["a", "b", "admin"]) {
        const res = await ok(name, "GET", "/api/data/members");
        expect({ name, ids: idsOf(res) }).toEqual({ name, ids: sorted(all) });
      }
    });

    it("authenticated: anonymous and a publishable key (a credential, but no user) are 403, `user.id != null` being unknown (9.2, 4.4, 4.12)", async () => {
      const [first] = (await database()).members;
      for (const name of ["anon", "pk"]) {
        expectForbidden(await as(name, "GET", "/api/data/members"), READ, "members");
        expectForbidden(await as(name, "GET", `/api/data/members/${first!.id}`), READ, "members");
        expectForbidden(await as(name, "GET", "/api/data/members/count"), READ, "members");
      }
    });

    it("authenticated reads only: a signed-in user adding themselves to B's project is 403, nothing written (9.2, 4.3)", async () => {
      await refused(
        () => as("a", "POST", "/api/data/members", { project_id: b.rows.p2, user_id: b.ids.a }),
        forbidden(CREATE, "members"),
      );
      expectNotFound(await as("a", "GET", `/api/data/tasks/${b.rows.taskB2}`));
    });
  });

  describe('deny: "deny certain operations like delete while selectively allowing the other ones" (9.2)', () => {
    it("deny: nobody deletes a task, not its author, not the admin, not by id nor by where; nothing is deleted (9.2, 4.3, Space Cloud: deny)", async () => {
      for (const name of ["a", "b", "admin"]) {
        await refused(() => as(name, "DELETE", `/api/data/tasks/${b.rows.taskA3}`), forbidden(DELETE, "tasks"));
        await refused(
          () => as(name, "DELETE", "/api/data/tasks", { author_id: b.ids[name] ?? b.ids.a }),
          forbidden(DELETE, "tasks"),
        );
      }
      for (const name of ["anon", "pk"])
        await refused(() => as(name, "DELETE", `/api/data/tasks/${b.rows.taskA1}`), forbidden(DELETE, "tasks"));
    });

    it("deny takes away delete only: on the same table A still updates her task, and the admin deletes other tables' rows (9.2, 4.3)", async () => {
      const res = await ok("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { done: true });
      expect(res.body.data).toMatchObject({ id: b.rows.taskA1, done: true });
      await ok("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { done: false });
      const created = await ok("admin", "POST", "/api/data/announcements", { title: "to delete" });
      await ok("admin", "DELETE", `/api/data/announcements/${created.body.data.id}`);
      expect(await dbRows(b.server, "SELECT id FROM announcements WHERE id = ?", created.body.data.id)).toEqual([]);
    });
  });

  describe('match: "allow a certain request only when a certain condition has been met"', () => {
    it('match: "it can also be used for role based authentication": only the admin writes announcements, projects and members (9.2, 9.1, Space Cloud: match)', async () => {
      const created = await ok("admin", "POST", "/api/data/projects", { name: "P4" });
      await ok("admin", "PATCH", `/api/data/projects/${created.body.data.id}`, { name: "P4, renamed" });
      await ok("admin", "DELETE", `/api/data/projects/${created.body.data.id}`);
      await ok("admin", "PATCH", `/api/data/announcements/${b.rows.announcement}`, { body: "to everyone!" });
      await ok("admin", "PATCH", `/api/data/announcements/${b.rows.announcement}`, { body: "to everyone" });
      for (const name of ["a", "b", "anon", "pk"]) {
        await refused(
          () => as(name, "POST", "/api/data/announcements", { title: `by ${name}` }),
          forbidden(CREATE, "announcements"),
        );
        await refused(
          () => as(name, "PATCH", `/api/data/announcements/${b.rows.announcement}`, { title: "hijacked" }),
          forbidden(UPDATE, "announcements"),
        );
        await refused(() => as(name, "POST", "/api/data/projects", { name: "mine" }), forbidden(CREATE, "projects"));
      }
      // A reads P1 (a member) but renaming it is still the admin's
      await refused(
        () => as("a", "PATCH", `/api/data/projects/${b.rows.p1}`, { name: "A's now" }),
        forbidden(UPDATE, "projects"),
      );
    });

    it("match on the row: a user deletes only her own membership (leaves a project), not B's — 403, unchanged (9.2, 4.5, Space Cloud: match)", async () => {
      const [mineInP3] = await dbRows(
        b.server,
        "SELECT id FROM members WHERE project_id = ? AND user_id = ?",
        b.rows.p3,
        b.ids.a,
      );
      const [bsInP3] = await dbRows(
        b.server,
        "SELECT id FROM members WHERE project_id = ? AND user_id = ?",
        b.rows.p3,
        b.ids.b,
      );
      // B's membership is readable to A (authenticated) but not hers to delete
      await ok("a", "GET", `/api/data/members/${bsInP3!.id}`);
      await refused(() => as("a", "DELETE", `/api/data/members/${bsInP3!.id}`), forbidden(DELETE, "members"));
      // a delete of many reaches her own rows only, whatever the where says (4.3a)
      await refused(
        async () => ok("a", "DELETE", "/api/data/members", { user_id: b.ids.b }),
        (res) => expect(idsOf(res)).toEqual([]),
      );
      await ok("a", "DELETE", `/api/data/members/${mineInP3!.id}`);
      expect(await dbRows(b.server, "SELECT id FROM members WHERE id = ?", mineInP3!.id)).toEqual([]);
      // having left P3, A no longer reads its tasks (the query rule sees the membership gone)
      expectNotFound(await as("a", "GET", `/api/data/tasks/${b.rows.taskA3}`));
      await b.server.rows("INSERT INTO members (project_id, user_id) VALUES (?, ?)", b.rows.p3, b.ids.a);
      await ok("a", "GET", `/api/data/tasks/${b.rows.taskA3}`);
    });

    it("match on the row without a user: anonymous and the publishable key, who read no membership, delete none: 404 (9.2, 4.4, 4.5)", async () => {
      const [first] = (await database()).members;
      for (const name of ["anon", "pk"]) {
        await refused(() => as(name, "DELETE", `/api/data/members/${first!.id}`), expectNotFound);
        await refused(
          async () => ok(name, "DELETE", "/api/data/members", { id: { $gt: 0 } }),
          (res) => expect(idsOf(res)).toEqual([]),
        );
      }
    });

    it("match without a user: anonymous and the publishable key update no task (9.2, 4.4)", async () => {
      for (const name of ["anon", "pk"])
        await refused(() => as(name, "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { done: true }), expectNotFound);
    });
  });

  describe('query: "allow a certain request only if a database request returns successfully"', () => {
    it("query: each user lists the tasks of the projects they are a member of; the count agrees (9.2, 4.5, Space Cloud: query)", async () => {
      const expected: Record<string, number[]> = {
        a: [b.rows.taskA1, b.rows.taskA3, b.rows.taskB3],
        b: [b.rows.taskB2, b.rows.taskA3, b.rows.taskB3],
      };
      for (const [name, ids] of Object.entries(expected)) {
        const res = await ok(name, "GET", "/api/data/tasks");
        expect({ name, ids: idsOf(res) }).toEqual({ name, ids: sorted(ids) });
        const count = await ok(name, "GET", "/api/data/tasks/count");
        expect(count.body.data.count).toBe(ids.length);
      }
    });

    it("query: the rule is the same for everyone, so the admin (a member of nothing), anonymous and the key list no task (9.2, 4.4)", async () => {
      for (const name of ["admin", "anon", "pk"]) {
        const res = await ok(name, "GET", "/api/data/tasks");
        expect({ name, ids: idsOf(res) }).toEqual({ name, ids: [] });
        expectNotFound(await as(name, "GET", `/api/data/tasks/${b.rows.taskA1}`));
      }
    });

    it("query: a task of a project A is not in is 404, byte-identical to a missing one, in lists, by id and through with (9.2, 4.5, 4.10)", async () => {
      const hidden = await as("a", "GET", `/api/data/tasks/${b.rows.taskB2}`);
      expectNotFound(hidden);
      expect(hidden.text).toBe((await as("a", "GET", "/api/data/tasks/999999")).text);
      const listed = await ok("a", "GET", `/api/data/tasks?where=${q({ project_id: b.rows.p2 })}`);
      expect(listed.body.data).toEqual([]);
      const project = await ok("a", "GET", `/api/data/projects/${b.rows.p3}?with=tasks`);
      expect(sorted(project.body.data.tasks.map((t: { id: number }) => t.id))).toEqual(
        sorted([b.rows.taskA3, b.rows.taskB3]),
      );
    });

    it('query: "the query\'s find clause is generated dynamically": added to P1, B reads its tasks; removed, she does not (9.2, 4.13)', async () => {
      expectNotFound(await as("b", "GET", `/api/data/tasks/${b.rows.taskA1}`));
      const added = await ok("admin", "POST", "/api/data/members", { project_id: b.rows.p1, user_id: b.ids.b });
      // "successful if even a single row is returned": two matching memberships still give each task once
      const twice = await ok("admin", "POST", "/api/data/members", { project_id: b.rows.p1, user_id: b.ids.b });
      await ok("b", "GET", `/api/data/tasks/${b.rows.taskA1}`);
      const listed = await ok("b", "GET", `/api/data/tasks?where=${q({ project_id: b.rows.p1 })}`);
      expect(idsOf(listed)).toEqual([b.rows.taskA1]);
      await ok("admin", "DELETE", `/api/data/members/${added.body.data.id}`);
      await ok("admin", "DELETE", `/api/data/members/${twice.body.data.id}`);
      expectNotFound(await as("b", "GET", `/api/data/tasks/${b.rows.taskA1}`));
    });
  });

  describe('and, or: "mix and match the match and query rules"', () => {
    it("and: A creates a task as herself in a project she is a member of; not in B's project, not as B (9.2, 4.6, Space Cloud: and)", async () => {
      const created = await ok("a", "POST", "/api/data/tasks", {
        title: "and: both hold",
        project_id: b.rows.p1,
        author_id: b.ids.a,
      });
      expect(created.status).toBe(201);
      const attempts: [string, Record<string, unknown>][] = [
        ["a", { title: "query fails", project_id: b.rows.p2, author_id: b.ids.a }],
        ["a", { title: "match fails", project_id: b.rows.p1, author_id: b.ids.b }],
        ["b", { title: "both fail", project_id: b.rows.p1, author_id: b.ids.a }],
        ["admin", { title: "the admin is no member", project_id: b.rows.p1, author_id: b.ids.admin }],
        ["anon", { title: "nobody", project_id: b.rows.p1 }],
        ["pk", { title: "nobody", project_id: b.rows.p1 }],
      ];
      for (const [name, body] of attempts)
        await refused(() => as(name, "POST", "/api/data/tasks", body), forbidden(CREATE, "tasks"));
      // a create of many is one write: one row failing the rule refuses all of them
      await refused(
        () =>
          as("a", "POST", "/api/data/tasks", [
            { title: "fine", project_id: b.rows.p1, author_id: b.ids.a },
            { title: "not fine", project_id: b.rows.p2, author_id: b.ids.a },
          ]),
        forbidden(CREATE, "tasks"),
      );
    });

    it('and, its match on "fields in the document to be inserted": without author_id the row has no author, which is not the caller (9.2, 4.6)', async () => {
      await refused(
        () => as("a", "POST", "/api/data/tasks", { title: "no author", project_id: b.rows.p3 }),
        forbidden(CREATE, "tasks"),
      );
    });

    it("and on update: A updates only her own tasks; B's task she can read is 403, B's she cannot read 404, both unchanged (9.2, 4.5, 4.10, Space Cloud: and)", async () => {
      const res = await ok("a", "PATCH", `/api/data/tasks/${b.rows.taskA3}`, { title: "A in P3, edited" });
      expect(res.body.data).toMatchObject({ id: b.rows.taskA3, title: "A in P3, edited" });
      // B's task in P3 is readable to A (she is a member) but not hers to change
      await ok("a", "GET", `/api/data/tasks/${b.rows.taskB3}`);
      await refused(
        () => as("a", "PATCH", `/api/data/tasks/${b.rows.taskB3}`, { done: true }),
        forbidden(UPDATE, "tasks"),
      );
      // B's task in P2 she cannot read: 404, byte-identical to a task that does not exist (4.10)
      const missing = await as("a", "PATCH", "/api/data/tasks/999999", { done: true });
      await refused(
        () => as("a", "PATCH", `/api/data/tasks/${b.rows.taskB2}`, { done: true }),
        (res) => {
          expectNotFound(res);
          expect(res.text).toBe(missing.text);
        },
      );
    });

    it("and after the write: A can neither hand her task to B nor move it into a project she is not in — 403, unchanged (9.2, 4.6)", async () => {
      await refused(
        () => as("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { author_id: b.ids.b }),
        forbidden(UPDATE, "tasks"),
      );
      await refused(
        () => as("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { project_id: b.rows.p2 }),
        forbidden(UPDATE, "tasks"),
      );
      // an update of many is one write: moving all her tasks into P2 is refused as a whole
      await refused(
        () => as("a", "PATCH", "/api/data/tasks", { update: { project_id: b.rows.p2 }, where: { author_id: b.ids.a } }),
        forbidden(UPDATE, "tasks"),
      );
      await ok("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { project_id: b.rows.p3 });
      await ok("a", "PATCH", `/api/data/tasks/${b.rows.taskA1}`, { project_id: b.rows.p1 });
    });

    it('and, "match the where clause": a where naming B\'s tasks reaches none of them, the rule being ANDed with it (9.2, 4.3a)', async () => {
      await refused(
        () =>
          ok("a", "PATCH", "/api/data/tasks", {
            update: { done: true },
            where: { $or: [{ author_id: b.ids.b }, { id: { $gt: 0 }, author_id: { $ne: b.ids.a } }] },
          }),
        (res) => expect(idsOf(res)).toEqual([]),
      );
    });

    it("or: the admin reads every project (match on the role), a user those she is a member of (query) (9.2, Space Cloud: or)", async () => {
      const all = await ok("admin", "GET", "/api/data/projects");
      expect(idsOf(all)).toEqual(sorted([b.rows.p1, b.rows.p2, b.rows.p3]));
      expect(idsOf(await ok("a", "GET", "/api/data/projects"))).toEqual(sorted([b.rows.p1, b.rows.p3]));
      expect(idsOf(await ok("b", "GET", "/api/data/projects"))).toEqual(sorted([b.rows.p2, b.rows.p3]));
      expectNotFound(await as("a", "GET", `/api/data/projects/${b.rows.p2}`));
      await ok("admin", "GET", `/api/data/projects/${b.rows.p2}`);
    });

    it("or without a user: neither side holds for anonymous or the publishable key, never NULL = NULL (9.2, 4.4)", async () => {
      for (const name of ["anon", "pk"]) {
        expect({ name, ids: idsOf(await ok(name, "GET", "/api/data/projects")) }).toEqual({ name, ids: [] });
        expectNotFound(await as(name, "GET", `/api/data/projects/${b.rows.p1}`));
      }
    });
  });

  it("the README's Space Cloud table shows each rule kind exactly as examples/rules configures it, under its permissions (9.2)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const rows = readme
      .split("\n")
      .filter((line) => line.startsWith("| `") && line.includes("effect:"))
      .map((line) => line.split(" | "));
    const expected: Record<string, [object, string[]]> = {
      "`allow`": [kinds.allow, [READ]],
      "`authenticated`": [kinds.authenticated, [READ]],
      "`deny`": [kinds.deny, [DELETE]],
      "`match` (the caller)": [kinds.matchRole, [CREATE, UPDATE, DELETE]],
      "`match` (the row)": [kinds.match, [DELETE]],
      "`query`": [kinds.query, [READ]],
      "`and`": [kinds.and, [CREATE, UPDATE]],
      "`or`": [kinds.or, [READ]],
    };
    expect(rows.map((r) => r[0]!.slice(2))).toEqual(Object.keys(expected));
    for (const [kind, cell] of rows.map((r) => [r[0]!.slice(2), r[1]!] as const)) {
      const [policy, permissions] = expected[kind]!;
      const [, on, source] = /^(.+?): `(\{.*\})`$/.exec(cell)!;
      // the cell is the object literal as written in the config; evaluated, it is the config's policy
      expect({ kind, policy: new Function(`return (${source});`)() }).toEqual({ kind, policy });
      const grantedBy = kinds.rules.filter((p) => p.policies.includes(policy as never)).map((p) => p.permission);
      expect({ kind, grantedBy }).toEqual({ kind, grantedBy: permissions });
      expect({ kind, on }).toEqual({ kind, on: permissions.map((p) => p.replace("data.entity.", "")).join(", ") });
    }
  });
});
