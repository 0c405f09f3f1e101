/** Users' emails are one identity however they are written (2.4, 3.3): trimmed and lowercased on every write. */
import { em, entity, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

const schema = em({ users: entity("users", { name: text() }) });
let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    data: schema.toJSON(),
    auth: { enabled: true, allow_register: true, password: { argon2: { memory_cost: 1024, time_cost: 1 } } },
  });
});
afterAll(() => server.close());

describe("email fields (2.4, 3.3)", () => {
  it("the data API stores users' emails trimmed and lowercased", async () => {
    const res = await server.request("POST", "/api/data/users", { email: "  Bob@Example.COM " });
    expect(res.status).toBe(201);
    expect(res.body.data.email).toBe("bob@example.com");
  });

  it("so registering the same address in another case is a conflict (409)", async () => {
    const res = await server.request("POST", "/api/auth/password/register", {
      email: "BOB@example.com",
      password: "password-123",
    });
    expect(res.status).toBe(409);
  });

  it("a value that is not an email address is a validation error", async () => {
    const res = await server.request("POST", "/api/data/users", { email: "not an email" });
    expect(res.status).toBe(400);
    expect(res.body.error.fields.email).toBeDefined();
  });
});
