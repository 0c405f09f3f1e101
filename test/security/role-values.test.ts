/**
 * A user's role is one of the configured roles (§1.8: unknown roles are errors): an admin who mistypes one
 * through the data API gets a 400 naming the roles, not a user whose role matches no policy. The role column
 * stays text, so a role added to the config later needs no migration.
 */
import type { CitadelConfig } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, register } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";

const config: CitadelConfig = {
  auth: {
    enabled: true,
    allow_register: true,
    default_role_register: "admin",
    jwt: { secret: "role-values-secret-0123456789-abcdefghijkl" },
    password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
    roles: { admin: { implicit_allow: true }, member: { permissions: [] } },
  },
};

describe("users.role takes only the configured roles (1.8, 4.11)", () => {
  let server: TestServer;
  let admin: Record<string, string>;
  let memberId: number;
  beforeAll(async () => {
    server = await startServer(config);
    admin = bearer((await register(server, "admin@test.com", "pass12345")).token);
    const member = await server.request("POST", "/api/data/users", { email: "m@test.com", role: "member" }, admin);
    expect(member.status, member.text).toBe(201);
    memberId = member.body.data.id;
  });
  afterAll(() => server.close());

  const roleOf = async (id: number) => (await server.rows(`SELECT role FROM users WHERE id = ${id}`))[0]!.role;

  it("an unknown role on update is 400 naming the configured roles, and changes nothing", async () => {
    const res = await server.request("PATCH", `/api/data/users/${memberId}`, { role: "superuser" }, admin);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(String(res.body.error.fields.role)).toBe("must be one of admin, member");
    expect(await roleOf(memberId)).toBe("member");
  });

  it("an unknown role on create is 400 and creates nothing", async () => {
    const before = (await server.rows("SELECT count(*) AS n FROM users"))[0]!.n;
    const res = await server.request("POST", "/api/data/users", { email: "x@test.com", role: "Admin" }, admin);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.fields.role).toBeDefined();
    expect((await server.rows("SELECT count(*) AS n FROM users"))[0]!.n).toBe(before);
  });

  it("a configured role, or none, is accepted", async () => {
    const promote = await server.request("PATCH", `/api/data/users/${memberId}`, { role: "admin" }, admin);
    expect(promote.status, promote.text).toBe(200);
    expect(await roleOf(memberId)).toBe("admin");
    const none = await server.request("PATCH", `/api/data/users/${memberId}`, { role: null }, admin);
    expect(none.status, none.text).toBe(200);
    expect(await roleOf(memberId)).toBeNull();
  });
});
