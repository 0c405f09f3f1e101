/**
 * The API key tests' app (§5): posts readable by anonymous callers when published, users who create and update
 * their own, a read-only role for keys created with a role of their own, and admins. Not a test file itself.
 */
import { boolean, type CitadelConfig, em, entity, relation, text } from "citadel";
import { expect } from "vitest";
import type { TestResponse, TestServer } from "../helpers/server.js";

export const schema = em(
  {
    posts: entity("posts", { title: text().required(), published: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
);

type ApiKeysConfig = NonNullable<NonNullable<CitadelConfig["auth"]>["api_keys"]>;

/** The app with API keys on; `keys` overrides `auth.api_keys`. */
export function keysConfig(keys: ApiKeysConfig = {}): CitadelConfig {
  return {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      jwt: { secret: "api-key-tests-secret-0123456789-abcdefghijkl" },
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
      api_keys: { enabled: true, ...keys },
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { published: true } }],
            },
          ],
        },
        user: {
          permissions: [
            "data.entity.read",
            "data.entity.create",
            { permission: "data.entity.update", policies: [{ effect: "filter", filter: { author_id: "@user.id" } }] },
          ],
        },
        reader: { permissions: ["data.entity.read"] },
        admin: { implicit_allow: true },
      },
    },
  };
}

export const PASSWORD = "api-key-tests-password";

/** The one 401 body of every key that does not work (§5.4). */
export const INVALID_KEY_BODY = { error: { code: "unauthorized", message: "invalid or missing API key" } };

export function expectInvalidKey(res: TestResponse) {
  expect(res.status, res.text).toBe(401);
  expect(res.body).toEqual(INVALID_KEY_BODY);
}

export const apikey = (key: string) => ({ apikey: key });

/** Create a key as `headers` (an admin's Authorization); fails the test unless it answers 201 with the key. */
/** `POST /api/system/keys` as `headers`' caller, whatever it answers. */
export const mintKey = (server: TestServer, headers: Record<string, string>, body: Record<string, unknown>) =>
  server.request("POST", "/api/system/keys", body, headers);

export async function createKey(
  server: TestServer,
  headers: Record<string, string>,
  body: Record<string, unknown>,
): Promise<{ id: number; key: string; prefix: string }> {
  const res = await mintKey(server, headers, body);
  expect(res.status, res.text).toBe(201);
  expect(res.body.data.key).toMatch(/^(pk|sk)_[a-z0-9]+_[0-9A-Za-z]{55}$/);
  return res.body.data;
}

/** Ask again until `check` holds (bounded): rotation graces end by the clock, never by a timing assertion. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("the condition never held");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
