/**
 * Registration is not mass assignment (§3.3): while the guard enforces, a register body sets only the users
 * fields the role it registers with may update — through the guard's own decision (field lists, field rules).
 * A field the app keeps for admins (`verified`) is 400 naming it, and nothing is created. A hidden field (the
 * password hash, the token version, an app's `.hidden()` field) answers exactly as a field that does not exist
 * (§4.10): registration is no oracle for the users table's hidden columns.
 */
import { boolean, type CitadelConfig, em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

const schema = em({
  users: entity("users", {
    nickname: text().maxLength(40),
    bio: text(),
    verified: boolean().default(false),
    internal_note: text().hidden(),
  }),
});

const selfUpdate = (policy: Record<string, unknown>) => ({
  permission: "data.entity.update",
  effect: "allow" as const,
  policies: [{ condition: { entity: "users" }, effect: "filter" as const, filter: { id: "@user.id" }, ...policy }],
});

function config(registerAs: string): CitadelConfig {
  return {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      allow_register: true,
      default_role_register: registerAs,
      jwt: { secret: "register-fields-secret-0123456789-abcdefghij" },
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
      roles: {
        // edits its own nickname and bio; `verified` is the admins'
        member: { permissions: [selfUpdate({ fields: ["nickname", "bio"] })] },
        // may update its own row, but a field rule keeps `bio` for admins (9.4)
        ruled: { permissions: [selfUpdate({ fields: { bio: { write: "@has_role('admin')" } } })] },
        // may not update users at all
        reader: { permissions: [] },
        admin: { implicit_allow: true },
      },
    },
  };
}

const PASSWORD = "pass12345";

describe("a registration sets only what its role may update (3.3)", () => {
  const servers: Record<string, TestServer> = {};
  beforeAll(async () => {
    for (const role of ["member", "ruled", "reader", "admin"]) servers[role] = await startServer(config(role));
  });
  afterAll(async () => {
    for (const server of Object.values(servers)) await server.close();
  });

  const register = (role: string, email: string, extra: Record<string, unknown>) =>
    servers[role]!.request("POST", "/api/auth/password/register", { email, password: PASSWORD, ...extra });
  const users = async (role: string) => Number((await servers[role]!.rows("SELECT count(*) AS n FROM users"))[0]!.n);

  it("a field the role may update is set", async () => {
    const res = await register("member", "nick@test.com", { nickname: "nick", bio: "hi" });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user).toMatchObject({ nickname: "nick", bio: "hi", verified: false });
  });

  for (const [role, field, value] of [
    ["member", "verified", true],
    ["ruled", "bio", "mine"],
    ["reader", "nickname", "x"],
  ] as const)
    it(`role ${role}: ${field} is 400 naming it, and no user is created`, async () => {
      const before = await users(role);
      const res = await register(role, `${role}-${field}@test.com`, { [field]: value });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
      expect(String(res.body.error.fields[field])).toContain("may not be set at registration");
      expect(String(res.body.error.fields[field])).toContain(`the role "${role}"`);
      expect(await users(role)).toBe(before);
    });

  for (const role of ["member", "admin"])
    it(`role ${role}: a hidden field answers byte for byte as an unknown one, and no user is created (3.3, 4.10)`, async () => {
      const before = await users(role);
      const answer = async (field: string) => {
        const res = await register(role, `${role}-${field}@test.com`, { [field]: "x" });
        return { status: res.status, body: res.text.replaceAll(field, "<field>") };
      };
      const unknown = await answer("no_such_field");
      expect(unknown.status).toBe(400);
      for (const field of ["password_hash", "token_version", "internal_note"])
        expect(await answer(field), field).toEqual(unknown);
      expect(await users(role)).toBe(before);
    });

  it("the field rule's role may: fields without a rule still register (9.4)", async () => {
    const res = await register("ruled", "ruled@test.com", { nickname: "r" });
    expect(res.status, res.text).toBe(201);
  });

  it("an implicit_allow registration role sets any field but the role; email and password always work", async () => {
    const res = await register("admin", "boss@test.com", { verified: true });
    expect(res.status, res.text).toBe(201);
    expect(res.body.user.verified).toBe(true);
    const role = await register("admin", "boss2@test.com", { role: "admin" });
    expect(role.status).toBe(400);
    const plain = await register("reader", "plain@test.com", {});
    expect(plain.status, plain.text).toBe(201);
  });
});
