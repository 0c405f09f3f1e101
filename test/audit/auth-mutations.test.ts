/**
 * Auth's writes to users (and to the account a registration creates) are data mutations (7.2, 8.1): each is one
 * data.* entry per row, written in the write's own transaction (a write that fails after its statements leaves
 * neither row nor entry), with the right actor, and heard by the data engine's after-commit listeners (the
 * change feed's way in). No entry ever holds a password or its hash.
 */
import { join } from "node:path";
import type { CitadelConfig } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MutationEvent } from "../../src/data/events.js";
import type { Subject } from "../../src/guard/access.js";
import { defaultRuntime } from "../../src/runtime.js";
import { authConfig } from "../auth/helpers.js";
import { cli, ROOT } from "../cli/helpers.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

const AUDIT_APP = join(ROOT, "test/cli/audit-app.config.ts");
const NONE = { user_id: null, role: null, key_id: null, account_id: null, ip: null };
const REFUSED = "refused by a listener";

interface Heard {
  events: MutationEvent[];
  actor: Subject;
}

/** A server with the audit trail on, an after-commit listener, and an in-transaction one that can refuse. */
async function setup(config: CitadelConfig, seed?: typeof seedTenants) {
  const server = await startServer(config, { options: { seed, log: () => {} } });
  const heard: Heard[] = [];
  let refuse: (event: MutationEvent) => boolean = () => false;
  server.app.engine.events.onCommit((events, actor) => heard.push({ events, actor }));
  // registered after the audit trail's listener: it throws once the entries are appended, in the same transaction
  server.app.engine.events.onMutation(async (_trx, events) => {
    if (events.some(refuse)) throw new Error(REFUSED);
  });
  /** The entries about one row, oldest first, actor and changes decoded (read from the table: every engine). */
  const entries = async (entity: string, id: number): Promise<Row[]> =>
    (
      await server.rows(
        "select action, actor, request_id, changes from citadel_audit where entity = ? and row_id = ? order by id",
        entity,
        id,
      )
    ).map((e) => ({ ...e, actor: JSON.parse(e.actor), changes: e.changes === null ? null : JSON.parse(e.changes) }));
  const count = async () => Number((await server.rows("select count(*) as n from citadel_audit"))[0]!.n);
  /** What the after-commit listeners heard while `act` ran, as `[action, entity, id]`. */
  const hearing = async (act: () => Promise<unknown>) => {
    const from = heard.length;
    await act();
    return heard.slice(from);
  };
  const refusing = async (when: (event: MutationEvent) => boolean, act: () => Promise<unknown>) => {
    refuse = when;
    try {
      return await act();
    } finally {
      refuse = () => false;
    }
  };
  /** Run `act` while the audit trail fails to append `action` entries (an auth event written with its write). */
  const failing = async (action: string, act: () => Promise<unknown>) => {
    const audit = server.app.audit!;
    const record = audit.record;
    audit.record = async (input, trx) => {
      if (input.action === action) throw new Error(`cannot append ${action}`);
      return record.call(audit, input, trx);
    };
    try {
      return await act();
    } finally {
      audit.record = record;
    }
  };
  return { server, entries, count, hearing, refusing, failing };
}

const shape = (heard: Heard[]) => heard.flatMap((h) => h.events.map((e) => [e.action, e.entity, e.id]));

/** No password, and no password hash, in any entry (7.2); hidden fields are "[redacted]" wherever they changed. */
async function expectNoSecrets(server: TestServer, passwords: string[]) {
  const all = await server.rows("select * from citadel_audit");
  const text = JSON.stringify(all);
  for (const secret of [...passwords, "$argon2"]) expect(text).not.toContain(secret);
  for (const entry of all) {
    const changes = entry.changes === null ? {} : JSON.parse(entry.changes);
    for (const field of ["password_hash", "token_version"])
      for (const value of changes[field] ?? []) expect([null, "[redacted]"]).toContain(value);
  }
}

describe("auth's writes under tenancy (7.2, 6.4, 8.1)", () => {
  let t: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    t = await setup(tenancyConfig({ audit: { enabled: true } }), seedTenants);
  });
  afterAll(() => t?.server.close());

  const register = (email: string, account: string) =>
    t.server.request("POST", "/api/auth/password/register", { email, password: PASSWORD, account: { name: account } });

  it("registering makes one data.create for the account and one for the user, by the new user, heard once committed", async () => {
    let res: Awaited<ReturnType<typeof register>> | undefined;
    const heard = await t.hearing(async () => {
      res = await register("dora@c.test", "Account C");
    });
    expect(res!.status, res!.text).toBe(201);
    const { id, account_id: account } = res!.body.user;
    const user = await t.entries("users", id);
    expect(user.map((e) => e.action)).toEqual(["data.create", "auth.register"]);
    expect(user[0]!.actor).toMatchObject({ user_id: id, role: "admin", account_id: account, key_id: null });
    // ROUTE PATCH: the request's address and id, on both entries, the auth event in the write's transaction
    expect(user[0]!.actor.ip).toEqual(expect.any(String));
    expect(user.map((e) => e.request_id)).toEqual([res!.headers.get("x-request-id"), res!.headers.get("x-request-id")]);
    expect(user[1]!.actor).toEqual(user[0]!.actor);
    expect(user[0]!.changes).toMatchObject({
      email: [null, "dora@c.test"],
      password_hash: [null, "[redacted]"],
      token_version: [null, "[redacted]"],
    });
    const created = await t.entries("accounts", account);
    expect(created.map((e) => e.action)).toEqual(["data.create"]);
    expect(created[0]!.actor).toEqual(user[0]!.actor);
    expect(created[0]!.changes).toMatchObject({ name: [null, "Account C"] });
    expect(shape(heard)).toEqual([
      ["create", "accounts", account],
      ["create", "users", id],
    ]);
    // the events carry whole stored rows; the audit is what redacts them
    expect(heard[0]!.events[1]!.after).toMatchObject({ id, email: "dora@c.test", token_version: 0 });
    expect(heard[0]!.actor).toMatchObject({ role: "admin", user: { id }, tenant: account });
  });

  it("a registration that fails after its writes leaves no account, no user and no entry (7.2)", async () => {
    const before = await t.count();
    const refused = await t.hearing(() =>
      t.refusing(
        (e) => e.after?.email === "refused@c.test",
        async () => expect((await register("refused@c.test", "Refused Co")).status).toBe(500),
      ),
    );
    const taken = await t.hearing(async () => expect((await register("alice@a.test", "Taken Co")).status).toBe(409));
    const failed = await t.hearing(() =>
      t.failing("auth.register", async () => expect((await register("failed@c.test", "Failed Co")).status).toBe(500)),
    );
    expect([...refused, ...taken, ...failed]).toEqual([]);
    expect(await t.server.rows("select id from accounts where name = 'Failed Co'")).toEqual([]);
    expect(await t.server.rows("select id from users where email = 'refused@c.test'")).toEqual([]);
    expect(await t.server.rows("select id from accounts where name in ('Refused Co', 'Taken Co')")).toEqual([]);
    expect(await t.count()).toBe(before);
  });

  it("createUser (3.5) is one data.create without an actor; refused, it leaves nothing", async () => {
    const auth = t.server.app.module.auth;
    let user: Row | undefined;
    const heard = await t.hearing(async () => {
      user = await auth.createUser({ email: "seeded@a.test", password: PASSWORD, role: "member", account_id: 1 });
    });
    const entries = await t.entries("users", user!.id);
    expect(entries.map((e) => [e.action, e.actor])).toEqual([["data.create", NONE]]);
    expect(shape(heard)).toEqual([["create", "users", user!.id]]);
    expect(heard[0]!.actor).toMatchObject({ trusted: true });
    const before = await t.count();
    await expect(
      t.refusing(
        () => true,
        () => auth.createUser({ email: "never@a.test", password: PASSWORD }),
      ),
    ).rejects.toThrow(REFUSED);
    expect(await t.server.rows("select id from users where email = 'never@a.test'")).toEqual([]);
    expect(await t.count()).toBe(before);
  });

  it("the CLI's user set-role, set-password and delete: one data.* entry each beside its auth event, no actor (12.1)", async () => {
    const user = await t.server.app.module.auth.createUser({ email: "cli@a.test", password: PASSWORD, account_id: 1 });
    const run = async (argv: string[], stdin?: string) => {
      const done = await cli([...argv, "--config", AUDIT_APP, "--db", t.server.connection.url], { stdin });
      expect(done.code, done.stderr).toBe(0);
    };
    await run(["user", "set-role", "--email", "cli@a.test", "--role", "reader"]);
    await run(["user", "set-password", "--email", "cli@a.test"], "cli-password-2\n");
    await run(["user", "delete", "--email", "cli@a.test"]);
    const entries = await t.entries("users", user.id as number);
    expect(entries.map((e) => e.action)).toEqual([
      "data.create",
      "data.update",
      "auth.role_change",
      "data.update",
      "auth.password_change",
      "data.delete",
    ]);
    for (const entry of entries) expect(entry.actor).toEqual(NONE);
    expect(entries[1]!.changes).toEqual({ role: [null, "reader"], token_version: ["[redacted]", "[redacted]"] });
    expect(entries[3]!.changes).toEqual({
      password_hash: ["[redacted]", "[redacted]"],
      token_version: ["[redacted]", "[redacted]"],
    });
    expect(entries[5]!.changes).toMatchObject({ email: ["cli@a.test", null], password_hash: ["[redacted]", null] });
  });

  it("the users admin's changes are heard; a refused set-password changes nothing, its auth event included", async () => {
    const users = t.server.app.module.auth.users;
    const { id } = await users.create({ email: "admin-made@a.test", password: PASSWORD, account_id: 1 });
    const heard = await t.hearing(async () => {
      await users.setRole("admin-made@a.test", "member");
      await users.setPassword("admin-made@a.test", "admin-made-password");
    });
    expect(shape(heard)).toEqual([
      ["update", "users", id],
      ["update", "users", id],
    ]);
    const before = await t.count();
    await expect(
      t.refusing(
        (e) => e.id === id,
        () => users.setPassword("admin-made@a.test", "never-the-password"),
      ),
    ).rejects.toThrow(REFUSED);
    // the auth event is written in the write's transaction: when it cannot be, the password stays
    await expect(
      t.failing("auth.password_change", () => users.setPassword("admin-made@a.test", "never-the-password")),
    ).rejects.toThrow("cannot append auth.password_change");
    expect(await t.count()).toBe(before);
    await login(t.server, "admin-made@a.test", "admin-made-password");
    // a delete's foreign-key effects are heard with it, as the engine's deletes are: the user's note loses its author
    const note = (await t.server.app.module.data.create("notes", {
      title: "theirs",
      author_id: id,
      account_id: 1,
    })) as Row;
    const deleted = await t.hearing(() => users.delete("admin-made@a.test"));
    expect(shape(deleted)).toEqual([
      ["delete", "users", id],
      ["update", "notes", note.id],
    ]);
    expect(deleted[0]!.events[0]!.before).toMatchObject({ id, email: "admin-made@a.test" });
    const noted = await t.entries("notes", note.id);
    expect(noted.map((e) => [e.action, e.changes.author_id, e.actor])).toEqual([
      ["data.create", [null, id], NONE],
      ["data.update", [id, null], NONE],
    ]);
  });

  it("a password change and a logout are one data.update each, by the user (3, 4.11)", async () => {
    const bob = bearer(await login(t.server, "bob@a.test", PASSWORD));
    const [{ id }] = (await t.server.rows("select id from users where email = 'bob@a.test'")) as [Row];
    const changed = await t.hearing(async () => {
      const res = await t.server.request(
        "POST",
        "/api/auth/password/change",
        { password: PASSWORD, new_password: "bob-password-2" },
        bob,
      );
      expect(res.status, res.text).toBe(200);
    });
    const fresh = bearer(await login(t.server, "bob@a.test", "bob-password-2"));
    const refused = await t.hearing(() =>
      t.refusing(
        (e) => e.id === id,
        async () => expect((await t.server.request("POST", "/api/auth/logout", undefined, fresh)).status).toBe(500),
      ),
    );
    expect(refused).toEqual([]);
    // the refused logout revoked nothing
    expect((await t.server.request("GET", "/api/auth/me", undefined, fresh)).status).toBe(200);
    const loggedOut = await t.hearing(async () => {
      expect((await t.server.request("POST", "/api/auth/logout", undefined, fresh)).status).toBe(200);
    });
    expect((await t.server.request("GET", "/api/auth/me", undefined, fresh)).status).toBe(401);
    const entries = (await t.entries("users", id)).filter((e) => e.action !== "auth.login").slice(-4);
    expect(entries.map((e) => e.action)).toEqual(["data.update", "auth.password_change", "data.update", "auth.logout"]);
    const bobActor = { user_id: id, role: "member", account_id: 1, key_id: null };
    expect(entries[0]!.actor).toMatchObject(bobActor);
    expect(entries[0]!.changes).toEqual({
      password_hash: ["[redacted]", "[redacted]"],
      token_version: ["[redacted]", "[redacted]"],
    });
    expect(entries[2]!.actor).toMatchObject(bobActor);
    expect(entries[1]!.actor).toEqual(entries[0]!.actor);
    expect(entries[3]!.actor).toEqual(entries[2]!.actor);
    expect(entries[0]!.actor.ip).toEqual(expect.any(String));
    expect(entries[2]!.changes).toEqual({ token_version: ["[redacted]", "[redacted]"] });
    expect(shape([...changed, ...loggedOut])).toEqual([
      ["update", "users", id],
      ["update", "users", id],
    ]);
    expect(changed[0]!.actor).toMatchObject({ user: { id }, tenant: 1 });
  });

  it("given the request's subject, the actor has its address and id, and the auth event is in the write's transaction", async () => {
    const auth = t.server.app.module.auth;
    const request = (id: string) => ({ id, ip: "203.0.113.9" });
    const body = { email: "erin@d.test", password: PASSWORD, account: { name: "Account D" } };
    const { user } = await auth.register(body, "203.0.113.9", { role: undefined, request: request("r-register") });
    const id = user.id as number;
    const account = user.account_id as number;
    const as = (r: string): Subject => ({ role: "admin", user: { id }, tenant: account, request: request(r) });
    await auth.changePassword(id, { password: PASSWORD, new_password: "erin-password-2" }, as("r-change"));
    await expect(
      t.refusing(
        (e) => e.id === id,
        () => auth.logout(id, as("r-refused")),
      ),
    ).rejects.toThrow(REFUSED);
    // an auth event that cannot be appended undoes its write: the account and user, the token version
    const never = { email: "never@d.test", password: PASSWORD, account: { name: "Never D" } };
    await expect(t.failing("auth.register", () => auth.register(never, "203.0.113.9", as("r-never")))).rejects.toThrow(
      "cannot append auth.register",
    );
    expect(await t.server.rows("select id from accounts where name = 'Never D'")).toEqual([]);
    expect(await t.server.rows("select id from users where email = 'never@d.test'")).toEqual([]);
    const [version] = await t.server.rows("select token_version from users where id = ?", id);
    await expect(t.failing("auth.logout", () => auth.logout(id, as("r-failed")))).rejects.toThrow();
    expect(await t.server.rows("select token_version from users where id = ?", id)).toEqual([version]);
    await auth.logout(id, as("r-logout"));
    const entries = await t.entries("users", id);
    expect(entries.map((e) => [e.action, e.request_id])).toEqual([
      ["data.create", "r-register"],
      ["auth.register", "r-register"],
      ["data.update", "r-change"],
      ["auth.password_change", "r-change"],
      ["data.update", "r-logout"],
      ["auth.logout", "r-logout"],
    ]);
    const actor = { user_id: id, role: "admin", key_id: null, account_id: account, ip: "203.0.113.9" };
    for (const entry of entries) expect(entry.actor).toEqual(actor);
    expect((await t.entries("accounts", account)).map((e) => [e.action, e.request_id, e.actor])).toEqual([
      ["data.create", "r-register", actor],
    ]);
  });

  it("no entry holds a password or a password hash (7.2)", async () => {
    const passwords = [PASSWORD, "cli-password-2", "admin-made-password", "never-the-password", "bob-password-2"];
    await expectNoSecrets(t.server, [...passwords, "erin-password-2"]);
  });
});

describe("auth's writes without tenancy (7.2, 3.3)", () => {
  let t: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    t = await setup({ ...authConfig(), audit: { enabled: true } });
  });
  afterAll(() => t?.server.close());

  it("registering is one data.create by the new user, heard once committed", async () => {
    let res: Row | undefined;
    const heard = await t.hearing(async () => {
      res = await t.server.request("POST", "/api/auth/password/register", {
        email: "plain@x.test",
        password: PASSWORD,
      });
    });
    expect(res!.status, res!.text).toBe(201);
    const id = res!.body.user.id;
    const entries = await t.entries("users", id);
    expect(entries.map((e) => e.action)).toEqual(["data.create", "auth.register"]);
    expect(entries[0]!.actor).toMatchObject({ user_id: id, role: "user", account_id: null, key_id: null });
    expect(entries[0]!.changes).toMatchObject({ email: [null, "plain@x.test"], password_hash: [null, "[redacted]"] });
    expect(shape(heard)).toEqual([["create", "users", id]]);
  });

  it("a login that upgrades an outdated hash is one data.update by the user, without revoking (3.1)", async () => {
    const id = (await t.server.app.module.auth.createUser({ email: "old@x.test", password: PASSWORD })).id as number;
    const token = bearer(await login(t.server, "old@x.test", PASSWORD));
    const outdated = await (await defaultRuntime()).argon2.hash(PASSWORD, {
      memoryCost: 2048,
      timeCost: 1,
      parallelism: 1,
    });
    await t.server.rows("update users set password_hash = ? where id = ?", outdated, id);
    const heard = await t.hearing(() => login(t.server, "old@x.test", PASSWORD));
    expect(shape(heard)).toEqual([["update", "users", id]]);
    const entries = await t.entries("users", id);
    expect(entries.map((e) => e.action)).toEqual(["data.create", "auth.login", "data.update", "auth.login"]);
    expect(entries[2]!.actor).toMatchObject({ user_id: id, role: null });
    expect(entries[2]!.changes).toEqual({ password_hash: ["[redacted]", "[redacted]"] });
    expect((await t.server.request("GET", "/api/auth/me", undefined, token)).status).toBe(200);
    await expectNoSecrets(t.server, [PASSWORD]);
  });
});
