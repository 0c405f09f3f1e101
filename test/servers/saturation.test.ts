/**
 * A saturated database is 503 with Retry-After, never 500 (11.4): a server whose every connection is taken
 * answers the requests it cannot serve in time with 503, and serves them again once a connection is free.
 * Here the server has one PostgreSQL connection; a request holds it while it waits for a row lock that
 * another connection keeps.
 */
import { type CitadelConfig, em, entity, text } from "citadel";
import { type ServerHandle, serve } from "citadel/adapter/node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, lockWaitSeen, type Postgres, startPostgres } from "../helpers/engines.js";

const config: CitadelConfig = { data: em({ notes: entity("notes", { title: text() }) }).toJSON() };

describe("one PostgreSQL connection, taken (11.4)", () => {
  let cluster: Postgres | undefined;
  let handle: ServerHandle;
  let other: pg.Client;

  beforeAll(async () => {
    const external = process.env.CITADEL_TEST_POSTGRES_URL;
    cluster = external ? undefined : await startPostgres();
    const url = await createDatabase(external ?? cluster!.baseUrl);
    handle = serve({
      // the wait also bounds opening a new connection (pg's connectionTimeoutMillis): 500 ms, not 100, so that
      // a PostgreSQL backend slow to start on a loaded machine does not fail the server's start. The 503 below
      // waits it out on each of its tries (retryBusy): about 2.5 s
      connection: { url, pool: { max: 1, timeoutMs: 500 } },
      config,
      port: 0,
      hostname: "127.0.0.1",
      quiet: true,
      options: { log: () => {} },
    });
    await handle.ready;
    other = new pg.Client({ connectionString: url });
    await other.connect();
  }, 120_000);
  afterAll(async () => {
    await other?.end();
    await handle?.close();
    await cluster?.close();
  });

  const call = (method: string, path: string, body?: unknown) =>
    fetch(handle.url + path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("a request that finds no free connection in time is 503 with Retry-After; the held one completes", async () => {
    const created = await (await call("POST", "/api/data/notes", { title: "contended" })).json();
    const id = created.data.id as number;
    await other.query("begin");
    await other.query("update notes set title = 'held' where id = $1", [id]);
    // the server's only connection now waits for the lock, inside the PATCH's transaction
    const held = call("PATCH", `/api/data/notes/${id}`, { title: "patched" });
    await lockWaitSeen(other);
    const refused = await call("GET", "/api/data/notes");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toEqual({
      error: { code: "unavailable", message: "the database is busy, try again shortly" },
    });
    await other.query("commit");
    const patched = await held;
    expect(patched.status).toBe(200);
    expect((await patched.json()).data.title).toBe("patched");
    // the connection is free again: the same request is served
    expect((await call("GET", "/api/data/notes")).status).toBe(200);
  });
});
