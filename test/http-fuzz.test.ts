/** §2.3 and the brief: no request, however malformed, answers 500 or leaks SQL or a stack (fast-check over every route). */
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { schema } from "./data/fixtures.js";
import { startServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    data: schema.toJSON(),
    auth: {
      enabled: true,
      allow_register: true,
      jwt: { secret: "a-test-secret-that-is-at-least-32-bytes-long!!" },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
      rate_limit: { max_per_email: 100_000, max_per_address: 100_000 },
    },
  });
  await server.request("POST", "/api/data/posts", [{ title: "one" }, { title: "two", status: "published" }]);
});
afterAll(() => server.close());

const PATHS = [
  "/api/data/posts",
  "/api/data/posts/1",
  "/api/data/posts/abc",
  "/api/data/posts/1/comments",
  "/api/data/posts/1/tags",
  "/api/data/posts/query",
  "/api/data/posts/count",
  "/api/data/posts/exists",
  "/api/data/entity/posts",
  "/api/data/entity/posts/fn/count",
  "/api/data/entity/posts/fn/exists",
  "/api/data/users",
  "/api/data/users/1",
  "/api/data/nope/1",
  "/api/auth/password/login",
  "/api/auth/password/register",
  "/api/auth/password/change",
  "/api/auth/me",
  "/api/auth/logout",
  "/api/system/explain",
];
const PARAMS = ["where", "sort", "select", "with", "limit", "offset", "select[]"];

it("random methods, paths, query strings, bodies and headers never answer 500 (2.3)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("GET", "POST", "PATCH", "DELETE", "PUT"),
      fc.constantFrom(...PATHS),
      fc.array(fc.tuple(fc.constantFrom(...PARAMS), fc.oneof(fc.string(), fc.json())), { maxLength: 3 }),
      fc.option(fc.oneof(fc.json(), fc.string())),
      fc.option(fc.constantFrom("Bearer x.y.z", "Bearer ", "Basic abc", "bearer eyJhbGciOiJub25lIn0.e30.")),
      async (method, path, query, body, authorization) => {
        const search = query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (authorization) headers.authorization = authorization;
        const res = await fetch(`${server.url}${path}${search ? `?${search}` : ""}`, {
          method,
          headers,
          body: method === "GET" || body === null ? undefined : body,
        });
        const text = await res.text();
        const what = `${method} ${path}?${search} ${body} -> ${res.status} ${text}`;
        expect(res.status, what).toBeLessThan(500);
        expect(text, what).not.toMatch(/SQLITE|select .* from|\bat .*\.(ts|js):\d+/i);
      },
    ),
    // HTTP_FUZZ_SEED replays a run, HTTP_FUZZ_RUNS makes it longer
    {
      numRuns: Number(process.env.HTTP_FUZZ_RUNS ?? 1500),
      ...(process.env.HTTP_FUZZ_SEED ? { seed: Number(process.env.HTTP_FUZZ_SEED) } : {}),
    },
  );
});
