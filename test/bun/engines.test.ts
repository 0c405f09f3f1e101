/**
 * Bun on the server engines (§11.1, §11.3): a libSQL server and PostgreSQL open through Node's connector (libsql,
 * pg), which the Bun adapter reuses; the docs' Step 6 answers the same there as on bun:sqlite.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectNotFound, idsOf, sorted } from "../guard/helpers.js";
import { createDatabase, type Postgres, type Sqld, startPostgres, startSqld } from "../helpers/engines.js";
import { emailOf, PASSWORD } from "./apps.js";
import { type BunServer, loginAs, startBunServer } from "./bun-server.js";

/** Step 6 on `url`: owners see their drafts and not another's; a hidden draft is 404 like a missing id (4.5, 4.10). */
async function step6Holds(server: BunServer) {
  const rows = server.rows as Record<"pubA" | "draftA" | "pubB" | "draftB", number>;
  const a = await loginAs(server, emailOf("a"), PASSWORD);
  const list = await server.as(a, "GET", "/api/data/posts");
  expect(idsOf(list)).toEqual(sorted([rows.pubA, rows.draftA, rows.pubB]));
  expect(list.body.meta).toMatchObject({ count: 3, total: 3 });
  const hidden = await server.as(a, "GET", `/api/data/posts/${rows.draftB}`);
  expectNotFound(hidden);
  expect(hidden.text).toBe((await server.as(a, "GET", "/api/data/posts/999999")).text);
  const edited = await server.as(a, "PATCH", `/api/data/posts/${rows.draftA}`, { title: "edited on Bun" });
  expect(edited.body.data).toMatchObject({ id: rows.draftA, title: "edited on Bun" });
}

describe("Bun on a libSQL server (11.1)", () => {
  let sqld: Sqld;
  let server: BunServer;
  beforeAll(async () => {
    sqld = await startSqld();
    server = await startBunServer("step6", { url: sqld.url });
  });
  afterAll(async () => {
    await server?.close();
    await sqld?.close();
  });

  it("Step 6 holds on a libSQL server served by Bun (4.5, 4.10, 11.2)", async () => {
    await step6Holds(server);
  });
});

describe("Bun on PostgreSQL (11.1)", () => {
  let postgres: Postgres;
  let server: BunServer;
  beforeAll(async () => {
    postgres = await startPostgres();
    server = await startBunServer("step6", { url: await createDatabase(postgres.baseUrl) });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await postgres?.close();
  });

  it("Step 6 holds on PostgreSQL served by Bun (4.5, 4.10, 11.2)", async () => {
    await step6Holds(server);
  });
});
