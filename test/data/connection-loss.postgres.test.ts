/**
 * A PostgreSQL server that ends the app's idle connections (a restart, an administrator, a failover) must not
 * take the process down: pg reports it as an 'error' event on the pool, which nobody hears unless the
 * connector listens (§11). The next request gets a fresh connection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";
import { config } from "./fixtures.js";

describe("losing idle PostgreSQL connections (11)", () => {
  let server: TestServer;
  const uncaught: unknown[] = [];
  const hear = (error: unknown) => uncaught.push(error);

  beforeAll(async () => {
    server = await startServer(config);
    process.on("uncaughtException", hear);
  });
  afterAll(async () => {
    process.off("uncaughtException", hear);
    await server?.close();
  });

  it("terminated idle connections are replaced, and nothing is thrown at the process", async () => {
    // several requests at once leave several idle connections in the app's pool
    const first = await Promise.all(Array.from({ length: 4 }, () => server.request("GET", "/api/data/posts")));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const [{ n }] = (await server.rows(
      "select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state = 'idle'",
    )) as [{ n: number }];
    expect(n).toBeGreaterThan(0);
    // the pool hears each ended connection as it closes; then the app carries on with new ones
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await server.request("GET", "/api/data/posts");
    expect(after.status, after.text).toBe(200);
    expect(uncaught).toEqual([]);
  });
});
