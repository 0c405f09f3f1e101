/** Auth over HTTP for tests (§3): log in, register, and build the Authorization header. */
import { expect } from "vitest";
import type { TestServer } from "./server.js";

/** `{ authorization: "Bearer …" }`, or no header at all for an anonymous caller. */
export const bearer = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` };

/** `POST /api/auth/password/login` and return the token; fails the test unless it answers 200 `{ user, token }`. */
export async function login(server: TestServer, email: string, password: string): Promise<string> {
  const res = await server.request("POST", "/api/auth/password/login", { email, password });
  expect(res.status, `login ${email}: ${res.text}`).toBe(200);
  expect(typeof res.body?.token, res.text).toBe("string");
  return res.body.token as string;
}

/** `POST /api/auth/password/register`; fails the test unless it answers 201 `{ user, token }`. */
export async function register(
  server: TestServer,
  email: string,
  password: string,
): Promise<{ user: Record<string, unknown>; token: string }> {
  const res = await server.request("POST", "/api/auth/password/register", { email, password });
  expect(res.status, `register ${email}: ${res.text}`).toBe(201);
  expect(typeof res.body?.token, res.text).toBe("string");
  return res.body;
}
