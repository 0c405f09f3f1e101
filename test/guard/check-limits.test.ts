/**
 * The limits of §12.2 `citadel check` and §12.4 `citadel diff`, from a reviewer's side: the report never says
 * less than enforcement allows, and the diff asks for a review (exit 3) on each widening below. Each test builds
 * an app, reads its `accessReport()` (or diffs two reports) and compares with what the app does over HTTP.
 *
 * Decisions and fields that depend on the caller's claims are reported at their widest (the most any caller
 * could get); what reaches data around the data API's decisions — registration, key management, the audit
 * trail, tenantless secret keys — is in the report as principals, system permissions and warnings.
 */
import {
  type AccessReport,
  boolean,
  type CitadelConfig,
  type CreateAppInput,
  diffReports,
  em,
  entity,
  relation,
  text,
} from "citadel";
import { afterEach, describe, expect, it } from "vitest";
import { needsReview } from "../../src/guard/diff.js";
import { register } from "../helpers/auth.js";
import { reportOf } from "../helpers/report.js";
import { type Booted, boot, idsOf, insert, type Row } from "./helpers.js";

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

const schema = em(
  {
    posts: entity("posts", { title: text(), body: text(), status: text() }),
    users: entity("users", { name: text(), verified: boolean(), notes: text(), internal: text().hidden() }),
  },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users, { owner: true })],
);

/** A grant of one permission on posts only (no wide-grant warning), with these policies after the entity's. */
const onPosts = (permission: string, ...policies: Record<string, unknown>[]) => ({
  permission,
  effect: "allow",
  policies: policies.length > 0 ? policies : [{ condition: { entity: "posts" }, effect: "allow" }],
});

/** Roles every test shares: an admin (implicit_allow) and an anonymous default role that reads posts. */
const BASE_ROLES = {
  anonymous: { is_default: true, permissions: [onPosts(READ)] },
  admin: { implicit_allow: true, permissions: [] },
};

/** The shared roles plus `member` with these permissions. */
const members = (...permissions: unknown[]) => ({ ...BASE_ROLES, member: { permissions } });

/** A deny of one permission on posts where `condition` (beside the entity) holds. */
const denyOnPosts = (permission: string, condition: Record<string, unknown>) => ({
  permission,
  effect: "deny",
  policies: [{ condition: { entity: "posts", ...condition }, effect: "deny" }],
});

type Auth = Record<string, unknown>;
const appOf = (auth: Auth, extra: Partial<CitadelConfig> = {}): CreateAppInput => ({
  config: {
    data: schema.toJSON(),
    auth: { enabled: true, jwt: { secret: "a-check-limits-secret-of-at-least-32-bytes!" }, ...auth },
    ...extra,
  } as CitadelConfig,
});

/** Fields of an entity the report says `role` may read on at least some rows. */
const readableIn = (report: AccessReport, entity: string, role: string) =>
  Object.entries(report.fields[entity] ?? {})
    .filter(([, byRole]) => byRole[role]?.read !== "none")
    .map(([f]) => f);

let booted: Booted<Row> | undefined;
afterEach(async () => {
  await booted?.server.close();
  booted = undefined;
});

/** Start the app over HTTP with these users (name → role) and two posts by the admin. */
async function serve(input: CreateAppInput, users: Record<string, string>): Promise<Booted<Row>> {
  booted = await boot<Row>(input, {
    users: { admin: "admin", ...users },
    rows: async (ctx, ids) => {
      const [one, two] = await insert(ctx, "posts", [
        { title: "one", body: "body-one", status: "public", author_id: ids.admin },
        { title: "two", body: "body-two", status: "public", author_id: ids.admin },
      ]);
      return { one: one!.id, two: two!.id };
    },
  });
  return booted;
}

describe("citadel check never reports less than enforcement allows (12.2)", () => {
  it("a deny conditioned on a claim is reported as not denying the role (decided per request), and a member without that claim reads posts and their body (12.2, 4.12)", async () => {
    // a blocklist: members read posts, except the one member whose email is listed
    const auth = {
      roles: members(onPosts(READ), denyOnPosts(READ, { "user.email": "mallory@test.com" })),
    };
    const b = await serve(appOf(auth), { alice: "member", mallory: "member" });
    const report = b.server.app.accessReport();
    const alice = await b.as("alice", "GET", "/api/data/posts");
    const mallory = await b.as("mallory", "GET", "/api/data/posts");
    expect(mallory.status, mallory.text).toBe(403);
    expect(alice.status, alice.text).toBe(200);
    expect(alice.body.data[0]).toHaveProperty("body", "body-one");
    // the widest view: the deny may not hold for a member, so the role reads posts and their body
    const cell = report.decisions.member!.posts!.read;
    expect(cell.per_request).toEqual([
      expect.stringMatching(/^config\.auth\.roles\.member\.permissions\[1\]\.policies\[0\] \{/),
    ]);
    expect(
      { denied: cell.decision === "deny", bodyUnreadable: report.fields.posts!.body!.member!.read === "none" },
      "alice (member) reads posts and their body over HTTP",
    ).toEqual({ denied: false, bodyUnreadable: false });
  });

  it("an allow conditioned on a claim (Space Cloud 'authenticated') is reported per request with the fields a signed-in member reads (12.2, 9.2)", async () => {
    const auth = {
      roles: members(
        onPosts(READ, {
          condition: { entity: "posts" },
          effect: "allow",
          rule: "user.id != null",
          omit: ["status"],
        }),
      ),
    };
    const b = await serve(appOf(auth), { alice: "member" });
    const report = b.server.app.accessReport();
    const res = await b.as("alice", "GET", "/api/data/posts");
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body.data[0]).sort()).toEqual([
      "author_id",
      "body",
      "created_at",
      "id",
      "title",
      "updated_at",
    ]);
    // the decision is marked "~" (per request), and the fields are those a member with the claim reads
    expect(report.decisions.member!.posts!.read.per_request).toBeDefined();
    expect(readableIn(report, "posts", "member"), "fields alice reads over HTTP").toEqual(
      expect.arrayContaining(["id", "title", "body", "author_id"]),
    );
  });

  it("a field list on a policy conditioned on a claim is not reported as hiding the field from the role, which members without that claim read (12.2, 4.8, 4.12)", async () => {
    // interns see only titles; every other member sees everything
    const auth = {
      roles: members(
        onPosts(
          READ,
          { condition: { entity: "posts" }, effect: "allow" },
          {
            condition: { entity: "posts", "user.email": "intern@test.com" },
            effect: "allow",
            fields: ["title"],
          },
        ),
      ),
    };
    const b = await serve(appOf(auth), { alice: "member", intern: "member" });
    const report = b.server.app.accessReport();
    const intern = await b.as("intern", "GET", `/api/data/posts/${b.rows.one}`);
    expect(intern.body.data).not.toHaveProperty("body");
    const alice = await b.as("alice", "GET", `/api/data/posts/${b.rows.one}`);
    expect(alice.status, alice.text).toBe(200);
    expect(alice.body.data.body).toBe("body-one");
    expect(report.decisions.member!.posts!.read.decision).toBe("allow");
    expect(report.fields.posts!.body!.member!.read, "alice (member) reads posts.body over HTTP").not.toBe("none");
  });

  it("an allow conditioned on id with a field list is reported readable and writable at the widest; read-one and update of another row reach the field, and no list shows more than read-one (12.2, 4.12, 4.8)", async () => {
    // "post 1 shows and takes its title only": the field list restricts that row, not the others
    const idPolicy = { condition: { entity: "posts", id: 1 }, effect: "allow", fields: ["title"] };
    const auth = {
      roles: members(
        onPosts(READ, { condition: { entity: "posts" }, effect: "allow" }, idPolicy),
        onPosts(UPDATE, { condition: { entity: "posts" }, effect: "allow" }, idPolicy),
      ),
    };
    const b = await serve(appOf(auth), { alice: "member" });
    expect(b.rows.one).toBe(1);
    const report = b.server.app.accessReport();
    const body = report.fields.posts!.body!.member!;
    expect(report.decisions.member!.posts!.read.per_request).toEqual([
      expect.stringMatching(/^config\.auth\.roles\.member\.permissions\[0\]\.policies\[1\] \{/),
    ]);
    // some request reads and writes posts.body: the report must not say "none"
    expect(["all", "some"]).toContain(body.read);
    expect(["all", "some"]).toContain(body.update);
    const two = await b.as("alice", "GET", `/api/data/posts/${b.rows.two}`);
    expect(two.status, two.text).toBe(200);
    expect(two.body.data.body).toBe("body-two");
    const patch = await b.as("alice", "PATCH", `/api/data/posts/${b.rows.two}`, { body: "rewritten" });
    expect(patch.status, patch.text).toBe(200);
    // row 1 is where the field list applies: read-one hides its body, an update of it is refused
    const one = await b.as("alice", "GET", `/api/data/posts/${b.rows.one}`);
    expect(one.status, one.text).toBe(200);
    expect(one.body.data).not.toHaveProperty("body");
    const patchOne = await b.as("alice", "PATCH", `/api/data/posts/${b.rows.one}`, { body: "rewritten" });
    expect(patchOne.status, patchOne.text).toBe(403);
    // a list shows no field of a row that read-one of that row hides (today it hides row 2's body as well)
    const list = await b.as("alice", "GET", "/api/data/posts");
    expect(list.status, list.text).toBe(200);
    const readOne: Record<number, Row> = {
      [b.rows.one]: one.body.data,
      [b.rows.two]: (await b.as("alice", "GET", `/api/data/posts/${b.rows.two}`)).body.data,
    };
    expect(idsOf(list)).toEqual([b.rows.one, b.rows.two]);
    for (const row of list.body.data as Row[])
      expect(Object.keys(readOne[row.id]!), `listed row ${row.id}`).toEqual(expect.arrayContaining(Object.keys(row)));
  });

  it("registration refuses a users field its role may not update (users.verified): 400, nothing stored; the report names the registration role and gives it no write to the field (3.3, 12.2)", async () => {
    const auth = {
      allow_register: true,
      default_role_register: "member",
      roles: members(onPosts(READ)),
    };
    const b = await serve(appOf(auth), {});
    const report = b.server.app.accessReport();
    expect(report.principals.registration).toEqual({ open: true, role: "member" });
    expect(report.fields.users!.verified!.member!.update).toBe("none");
    // only admin (implicit_allow) is reported to create users.verified
    const creators = Object.entries(report.fields.users!.verified!)
      .filter(([, g]) => g.create !== "none")
      .map(([role]) => role);
    expect(creators).toEqual(["admin"]);
    const res = await b.server.request("POST", "/api/auth/password/register", {
      email: "eve@test.com",
      password: "pass1234",
      verified: true,
      name: "Eve",
    });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.fields).toHaveProperty("verified");
    expect(await b.server.rows("SELECT id FROM users WHERE email = ?", "eve@test.com")).toEqual([]);
    // registering without it works, as the role the report names
    const plain = await b.server.request("POST", "/api/auth/password/register", {
      email: "eve@test.com",
      password: "pass1234",
    });
    expect(plain.status, plain.text).toBe(201);
    expect(plain.body.user.role).toBe(report.principals.registration.role);
  });

  it("system.keys.manage is listed in report.system; its holder cannot mint a roleless secret key or an admin key (403, no key stored), and its own-role key keeps the role's decisions (12.2, 5.5, 5.1)", async () => {
    const auth = {
      // no secret_role: a secret key without a role of its own bypasses the guard
      api_keys: { enabled: true, publishable_role: "anonymous" },
      roles: { ...BASE_ROLES, keymaster: { permissions: ["system.keys.manage"] } },
    };
    const b = await serve(appOf(auth), { kim: "keymaster" });
    const report = b.server.app.accessReport();
    expect(report.system.keymaster).toEqual(["system.keys.manage"]);
    expect(report.principals.api_keys).toEqual({ require: false, publishable_role: "anonymous", secret_role: null });
    for (const entity of report.entities)
      for (const action of ["read", "create", "update", "delete"] as const)
        expect(report.decisions.keymaster![entity]![action].decision).toBe("deny");
    const keyCount = async () => Number((await b.server.rows("SELECT count(*) AS n FROM citadel_api_keys"))[0]!.n);
    const before = await keyCount();
    for (const body of [
      { name: "root", kind: "secret" },
      { name: "admin", kind: "secret", role: "admin" },
      { name: "admin-web", kind: "publishable", role: "admin" },
    ]) {
      const made = await b.as("kim", "POST", "/api/system/keys", body);
      expect(made.status, `${JSON.stringify(body)}: ${made.text}`).toBe(403);
      expect(made.body.error).toMatchObject({ code: "forbidden", permission: "system.keys.manage" });
      expect(made.text).not.toContain("sk_");
    }
    expect(await keyCount()).toBe(before);
    // a key acting as its own role reaches what the report says the role reaches: nothing of the data
    const own = await b.as("kim", "POST", "/api/system/keys", { name: "own", kind: "secret", role: "keymaster" });
    expect(own.status, own.text).toBe(201);
    expect(await keyCount()).toBe(before + 1);
    const del = await b.server.request("DELETE", `/api/data/posts/${b.rows.one}`, undefined, {
      apikey: own.body.data.key,
    });
    expect(del.status, del.text).toBe(403);
    const users = await b.server.request("GET", "/api/data/users", undefined, { apikey: own.body.data.key });
    expect(users.status, users.text).toBe(403);
  });

  it("system.audit.read is listed in the report, since the audit trail shows changed values of fields the role's data grants hide (12.2, 7.1, 7.4)", async () => {
    const auth = {
      roles: {
        ...BASE_ROLES,
        anonymous: {
          is_default: true,
          permissions: [onPosts(READ, { condition: { entity: "posts" }, effect: "allow", omit: ["body"] })],
        },
        auditor: { permissions: ["system.audit.read"] },
      },
    };
    const b = await serve(appOf(auth, { audit: { enabled: true } }), { ann: "auditor" });
    const report = b.server.app.accessReport();
    const patch = await b.as("admin", "PATCH", `/api/data/posts/${b.rows.one}`, { body: "top-secret-body" });
    expect(patch.status, patch.text).toBe(200);
    const trail = await b.as("ann", "GET", "/api/system/audit?limit=100");
    expect(trail.status, trail.text).toBe(200);
    expect(trail.text).toContain("top-secret-body");
    expect(report.fields.posts!.body!.auditor!.read).toBe("none");
    expect(report.system.auditor).toContain("system.audit.read");
    expect(
      JSON.stringify(report).includes("system.audit.read"),
      "ann (auditor) reads posts.body through /api/system/audit: the report says she holds system.audit.read",
    ).toBe(true);
  });

  it("/api/auth/me returns the caller's own users row without its hidden fields, by design, while the report's users fields say what the data API gives the role: nothing (3, 4.8, 12.2)", async () => {
    // admins keep notes about each user; members may not read users through the data API
    const auth = { roles: members(onPosts(READ)) };
    const b = await serve(appOf(auth), { alice: "member" });
    const report = b.server.app.accessReport();
    expect(report.decisions.member!.users!.read.decision).toBe("deny");
    expect(report.fields.users!.notes!.member!.read).toBe("none");
    // hidden fields are in no role's report
    expect(report.fields.users!.internal).toBeUndefined();
    const patch = await b.as("admin", "PATCH", `/api/data/users/${b.ids.alice}`, { notes: "flagged for fraud review" });
    expect(patch.status, patch.text).toBe(200);
    // a hidden field has a value only trusted code writes
    await b.server.rows("UPDATE users SET internal = ? WHERE id = ?", "internal-only", b.ids.alice);
    const me = await b.as("alice", "GET", "/api/auth/me");
    expect(me.status, me.text).toBe(200);
    // §3: /me is the caller's own user object, its non-hidden fields included, whatever the data API grants
    expect(me.body.user).toMatchObject({ id: b.ids.alice, email: "alice@test.com", notes: "flagged for fraud review" });
    expect(me.body.user).not.toHaveProperty("internal");
    expect(me.body.user).not.toHaveProperty("password_hash");
    expect(me.text).not.toContain("internal-only");
    // the data API refuses the same row, as the report says
    const row = await b.as("alice", "GET", `/api/data/users/${b.ids.alice}`);
    expect(row.status, row.text).toBe(403);
  });
});

describe("citadel check and diff with tenancy (12.2, 12.4, 6)", () => {
  const tenancySchema = em(
    {
      notes: entity("notes", { title: text() }),
      secrets: entity("secrets", { value: text() }),
      users: entity("users", {}),
    },
    ({ notes, users }) => [relation(notes, "author").manyToOne(users, { owner: true })],
  );
  const tenancyApp = (tenancy: Record<string, unknown>, keys: Record<string, unknown> = {}): CreateAppInput => ({
    config: {
      data: tenancySchema.toJSON(),
      auth: {
        enabled: true,
        jwt: { secret: "a-check-limits-secret-of-at-least-32-bytes!" },
        api_keys: { enabled: true, publishable_role: "member", ...keys },
        roles: {
          member: {
            permissions: [
              {
                permission: READ,
                effect: "allow",
                policies: [{ condition: { entity: { $in: ["notes", "secrets"] } }, effect: "allow" }],
              },
              {
                permission: CREATE,
                effect: "allow",
                policies: [{ condition: { entity: "notes" }, effect: "allow" }],
              },
            ],
          },
          reader: {
            permissions: [
              { permission: READ, effect: "allow", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
            ],
          },
          admin: { implicit_allow: true },
          superadmin: { implicit_allow: true },
        },
      },
      tenancy: { enabled: true, register: "closed", superadmin_role: "superadmin", ...tenancy },
    } as CitadelConfig,
  });

  it("a secret key without a tenant reaches every account (6.1, 6.2), even acting as a role whose tenant column the report says the server sets: the report warns of it at config.tenancy (12.2)", async () => {
    booted = await boot<Row>(tenancyApp({}, { secret_role: "member" }), {
      rows: async (ctx) => {
        const accounts = await insert(ctx, "accounts", [
          { name: "A", slug: "a" },
          { name: "B", slug: "b" },
        ]);
        await ctx.app.module.auth.createUser({
          email: "root@test.com",
          password: "pass1234",
          role: "superadmin",
        });
        return { a: accounts[0]!.id, b: accounts[1]!.id };
      },
    });
    const b = booted;
    const report = b.server.app.accessReport();
    // for a member's token the server sets the tenant column; the warning covers the keys without a tenant
    expect(report.fields.notes!.account_id!.member!.create).toBe("server");
    expect(report.principals.api_keys).toMatchObject({ secret_role: "member" });
    expect(report.warnings).toContainEqual({
      kind: "secret-keys",
      path: "config.tenancy",
      message: expect.stringContaining("every account"),
    });
    const root = await b.server.request("POST", "/api/auth/password/login", {
      email: "root@test.com",
      password: "pass1234",
    });
    const made = await b.server.request(
      "POST",
      "/api/system/keys",
      { name: "server", kind: "secret" },
      { authorization: `Bearer ${root.body.token}` },
    );
    expect(made.status, made.text).toBe(201);
    const res = await b.server.request(
      "POST",
      "/api/data/notes",
      { title: "planted", account_id: b.rows.b },
      { apikey: made.body.data.key },
    );
    // the key has no tenant: it writes any account's id into the tenant column, as the warning says
    expect(made.body.data.tenant).toBeNull();
    expect(res.status, res.text).toBe(201);
    const [row] = await b.server.rows("SELECT account_id FROM notes WHERE title = ?", "planted");
    expect(row!.account_id).toBe(b.rows.b);
  });

  it("diff: taking an entity out of the tenant scope is a changed setting that asks for review, though no decision widens (12.4, 6.1)", async () => {
    const before = await reportOf(tenancyApp({ entities: "*" }, { secret_role: "member" }));
    const after = await reportOf(tenancyApp({ entities: ["notes"] }, { secret_role: "member" }));
    expect(before.tenancy!.entities).toContain("secrets");
    expect(after.tenancy!.entities).not.toContain("secrets");
    const diff = diffReports(before, after);
    expect(diff.widens).toEqual([]);
    expect(needsReview(diff), "every member now reads every account's secrets").toBe(true);
  });
  it("diff: making a read-only role the superadmin_role (every account's rows) asks for review (12.4, 6.2)", async () => {
    const before = await reportOf(tenancyApp({ superadmin_role: "superadmin" }, { secret_role: "member" }));
    const after = await reportOf(tenancyApp({ superadmin_role: "reader" }, { secret_role: "member" }));
    expect(after.tenancy!.superadmin_role).toBe("reader");
    expect(needsReview(diffReports(before, after)), "readers now read every account's notes").toBe(true);
  });
});

describe("citadel diff asks for review (exit 3) on each of these widenings (12.4)", () => {
  it("a new grant conditioned on a claim (rule: user.id != null) asks for review (12.4, 9.2)", async () => {
    const before = await reportOf(appOf({ roles: members(onPosts(CREATE)) }));
    const after = await reportOf(
      appOf({
        roles: members(
          onPosts(CREATE),
          onPosts(DELETE, { condition: { entity: "posts" }, effect: "allow", rule: "user.id != null" }),
        ),
      }),
    );
    const diff = diffReports(before, after);
    expect(needsReview(diff), "every signed-in member now deletes every post").toBe(true);
  });

  it("a new grant beside a deny conditioned on a claim asks for review: the deny does not hide it (12.4, 4.12)", async () => {
    const before = await reportOf(appOf({ roles: members(onPosts(CREATE)) }));
    const after = await reportOf(
      appOf({
        roles: members(onPosts(CREATE), onPosts(DELETE), denyOnPosts(DELETE, { "user.email": "mallory@test.com" })),
      }),
    );
    const diff = diffReports(before, after);
    expect(needsReview(diff), "every member but mallory now deletes every post").toBe(true);
  });

  it("a field rule whose SQL changes ('some' -> 'some', more rows) asks for review (12.4, 9.4)", async () => {
    const withRule = (read: string) =>
      appOf({
        roles: members(onPosts(READ, { condition: { entity: "posts" }, effect: "allow", fields: { body: { read } } })),
      });
    const before = await reportOf(withRule("@owns_record()"));
    const after = await reportOf(withRule("status != 'draft'"));
    expect(before.fields.posts!.body!.member!.read).toBe("some");
    expect(after.fields.posts!.body!.member!.read).toBe("some");
    const diff = diffReports(before, after);
    expect(needsReview(diff), "members now read the body of every other member's post").toBe(true);
  });

  it("turning the guard off asks for review, with its new warning (12.4, 1.9)", async () => {
    const roles = members(onPosts(READ));
    const before = await reportOf(appOf({ roles }));
    const after = await reportOf(appOf({ roles, guard: { enabled: false } }));
    expect(after.enforced).toBe(false);
    const diff = diffReports(before, after);
    expect(diff.new_warnings.map((w) => w.kind)).toEqual(["guard-off"]);
    expect(needsReview(diff), "every route is now open to every caller").toBe(true);
  });

  it("removing secret_role (secret keys then bypass the guard) asks for review, with its new warning (12.4, 5.1)", async () => {
    const roles = members(onPosts(READ));
    const keys = { enabled: true, publishable_role: "anonymous" };
    const before = await reportOf(appOf({ roles, api_keys: { ...keys, secret_role: "member" } }));
    const after = await reportOf(appOf({ roles, api_keys: keys }));
    const diff = diffReports(before, after);
    expect(diff.new_warnings.map((w) => w.kind)).toEqual(["secret-keys"]);
    expect(needsReview(diff), "secret keys now bypass the guard").toBe(true);
  });

  it("publishable_role becoming admin asks for review; a publishable key then deletes (12.4, 5.1)", async () => {
    const roles = members(onPosts(READ));
    const keys = (publishable_role: string) => ({ enabled: true, publishable_role, secret_role: "member" });
    const before = await reportOf(appOf({ roles, api_keys: keys("anonymous") }));
    const afterApp = appOf({ roles, api_keys: keys("admin") });
    const after = await reportOf(afterApp);
    const b = await serve(afterApp, {});
    const made = await b.as("admin", "POST", "/api/system/keys", { name: "web", kind: "publishable" });
    expect(made.status, made.text).toBe(201);
    const del = await b.server.request("DELETE", `/api/data/posts/${b.rows.one}`, undefined, {
      apikey: made.body.data.key,
    });
    expect(del.status, del.text).toBe(200);
    expect(needsReview(diffReports(before, after)), "a page's publishable key now acts as admin").toBe(true);
  });

  it("default_role_register becoming admin asks for review; anyone then registers as admin and deletes (12.4, 3.3)", async () => {
    const roles = members(onPosts(READ));
    const before = await reportOf(appOf({ roles, allow_register: true, default_role_register: "member" }));
    const afterApp = appOf({ roles, allow_register: true, default_role_register: "admin" });
    const after = await reportOf(afterApp);
    const b = await serve(afterApp, {});
    const reg = await register(b.server, "eve@test.com", "pass1234");
    expect(reg.user.role).toBe("admin");
    const del = await b.as(reg.token, "DELETE", `/api/data/posts/${b.rows.one}`);
    expect(del.status, del.text).toBe(200);
    expect(needsReview(diffReports(before, after)), "anyone on the internet now registers as admin").toBe(true);
  });
});

describe("citadel check on row conditions, privileged and owner fields (12.2)", () => {
  it("a deny conditioned on id is reported as a filter excluding that row; lists omit it and read-one refuses it (12.2, 4.12)", async () => {
    const auth = {
      roles: members(onPosts(READ), denyOnPosts(READ, { id: 1 })),
    };
    const b = await serve(appOf(auth), { alice: "member" });
    expect(b.rows.one).toBe(1);
    const cell = b.server.app.accessReport().decisions.member!.posts!.read;
    expect(cell.decision).toBe("filter");
    expect(cell.where).toContain('"id"');
    const list = await b.as("alice", "GET", "/api/data/posts");
    expect((list.body.data as Row[]).map((r) => r.id)).toEqual([b.rows.two]);
    // read-one of the denied id is refused by the config (403 whether or not the row exists: no existence oracle)
    expect((await b.as("alice", "GET", `/api/data/posts/${b.rows.one}`)).status).toBe(403);
    expect((await b.as("alice", "GET", "/api/data/posts/1")).status).toBe(403);
    expect((await b.as("alice", "GET", `/api/data/posts/${b.rows.two}`)).status).toBe(200);
  });

  it("users.role is reported read-only to a role granted create and update on users, hidden fields to no role; HTTP refuses writing them and never returns hidden ones (12.2, 3.6, 4.8)", async () => {
    const auth = {
      roles: {
        ...BASE_ROLES,
        support: {
          permissions: [
            { permission: READ, effect: "allow", policies: [{ condition: { entity: "users" }, effect: "allow" }] },
            { permission: UPDATE, effect: "allow", policies: [{ condition: { entity: "users" }, effect: "allow" }] },
            { permission: CREATE, effect: "allow", policies: [{ condition: { entity: "users" }, effect: "allow" }] },
          ],
        },
      },
    };
    const b = await serve(appOf(auth), { sam: "support", alice: "anonymous" });
    const report = b.server.app.accessReport();
    expect(report.fields.users!.role!.support).toEqual({ read: "all", create: "none", update: "none" });
    expect(report.fields.users!.internal).toBeUndefined();
    expect(report.fields.users!.password_hash).toBeUndefined();
    const role = await b.as("sam", "PATCH", `/api/data/users/${b.ids.alice}`, { role: "admin" });
    expect(role.status, role.text).toBe(403);
    const create = await b.as("sam", "POST", "/api/data/users", { email: "x@test.com", role: "admin" });
    expect(create.status, create.text).toBe(403);
    const hidden = await b.as("sam", "PATCH", `/api/data/users/${b.ids.alice}`, { internal: "x" });
    expect(hidden.status, hidden.text).toBe(403);
    const read = await b.as("sam", "GET", `/api/data/users/${b.ids.alice}`);
    expect(read.body.data).not.toHaveProperty("internal");
    expect(read.body.data).not.toHaveProperty("password_hash");
    expect(report.fields.users!.name!.support!.update).toBe("all");
  });

  it("an owner column is reported 'own' for updates, and an update naming another user is 403 (12.2, 4.14)", async () => {
    const auth = { roles: members(onPosts(READ), onPosts(UPDATE)) };
    const b = await serve(appOf(auth), { alice: "member" });
    expect(b.server.app.accessReport().fields.posts!.author_id!.member!.update).toBe("own");
    const res = await b.as("alice", "PATCH", `/api/data/posts/${b.rows.one}`, { author_id: b.ids.admin });
    expect(res.status, res.text).toBe(403);
    const many = await b.as("alice", "PATCH", "/api/data/posts", {
      update: { author_id: b.ids.admin },
      where: { id: b.rows.one },
    });
    expect(many.status, many.text).toBe(403);
  });
});
