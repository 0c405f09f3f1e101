/**
 * §11.5: a create of many rows is a few multi-row INSERTs within SQLite's bind limit, not one per row, and keeps
 * what a create promises: all or nothing, ids and rows in input order, defaults per row (§2.4).
 * The guard's side of it (write check, owners, constraint oracles on a bulk create) is in
 * test/security/bulk-writes.test.ts.
 */

import { type CitadelApp, ConflictError, createApp, em, entity, number, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkSizes } from "../../src/data/writes.js";
import { dialectOf } from "../../src/db/connection.js";
import { ENGINE } from "../helpers/engines.js";
import { ENGINE_DRIVERS, type TestDatabase, testDatabase } from "../helpers/server.js";
import { countStatements } from "../helpers/statements.js";

const WIDE_FIELDS = 70;
const schema = em({
  posts: entity("posts", {
    title: text().required(),
    slug: text().unique(),
    status: text().default("draft"),
    views: number({ integer: true }),
  }),
  wide: entity("wide", Object.fromEntries(Array.from({ length: WIDE_FIELDS }, (_, i) => [`f${i}`, text()]))),
});

/** The columns a create of `entity` binds per row: its fields but id (timestamps included). */
const columnsOf = (app: CitadelApp, name: string) => app.engine.model(name).visibleFields.length - 1;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("chunk sizes (11.5)", () => {
  it("add up to the rows, never pass the bound, and are powers of two, largest first", () => {
    for (const [n, max] of [
      [1, 5_000],
      [1_000, 5_000],
      [999, 300],
      [1_000, 1],
      [7, 2],
      [1_000, 32_766],
    ] as const) {
      const sizes = chunkSizes(n, max);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
      for (const s of sizes) {
        expect(s).toBeLessThanOrEqual(max);
        expect(Number.isInteger(Math.log2(s))).toBe(true);
      }
      expect([...sizes].sort((a, b) => b - a)).toEqual(sizes);
    }
    expect(chunkSizes(1_000, 5_000)).toEqual([512, 256, 128, 64, 32, 8]);
  });
});

describe.each(ENGINE_DRIVERS)("bulk creates (%s)", (driver) => {
  let app: CitadelApp;
  let database: TestDatabase;
  beforeAll(async () => {
    database = await testDatabase({ driver });
    app = await createApp({
      connection: database.connection,
      config: { data: schema.toJSON() },
      options: { log: () => {} },
    });
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
  });

  const count = async (table: string) =>
    Number(
      (
        await app.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it("a 1,000-row create is a few multi-row INSERTs, not 1,000 (11.5)", async () => {
    const counted = countStatements(app);
    const rows = (await counted.data.create(
      "posts",
      range(1_000).map((i) => ({ title: `few ${i}` })),
    )) as unknown[];
    expect(rows).toHaveLength(1_000);
    const inserts = counted.statements().filter((k) => k === "InsertQueryNode");
    const max = Math.floor(dialectOf(app.db).maxBindValues / columnsOf(app, "posts"));
    expect(inserts).toHaveLength(chunkSizes(1_000, max).length);
    expect(inserts.length).toBeLessThanOrEqual(10);
    expect(counted.statements().length).toBeLessThanOrEqual(inserts.length + 4);
  });

  it("ids and rows come back in input order, each id naming the row it created (11.5)", async () => {
    const input = range(1_000).map((i) => ({ title: `order ${i}`, views: i }));
    const rows = (await app.module.data.create("posts", input)) as { id: number; title: string; views: number }[];
    expect(rows.map((r) => r.title)).toEqual(input.map((r) => r.title));
    const ids = rows.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const stored = await app.db.selectFrom("posts").select(["id", "title"]).where("id", "in", ids).execute();
    const titleOf = new Map(stored.map((r) => [Number(r.id), r.title]));
    expect(ids.map((id) => titleOf.get(id))).toEqual(input.map((r) => r.title));
  });

  it("SQLite's RETURNING emits a multi-row INSERT's ids in insert order, ascending (observed; writes.ts sorts them anyway)", async () => {
    const values = range(600).map((i) => ({ title: `returning ${i}`, created_at: "t", updated_at: "t" }));
    const returned = await app.db.insertInto("posts").values(values).returning(["id", "title"]).execute();
    expect(returned.map((r) => r.title)).toEqual(values.map((v) => v.title));
    const ids = returned.map((r) => Number(r.id));
    expect(ids).toEqual(range(600).map((i) => ids[0]! + i));
  });

  it("a create binds within the engine's variable limit: 1,000 rows of 72 columns, 72,000 values (11.5)", async () => {
    const counted = countStatements(app);
    const row = (i: number) => Object.fromEntries(range(WIDE_FIELDS).map((f) => [`f${f}`, `${i}.${f}`]));
    const rows = (await counted.data.create("wide", range(1_000).map(row))) as Record<string, unknown>[];
    expect(rows).toHaveLength(1_000);
    expect(rows[999]!.f69).toBe("999.69");
    const max = Math.floor(dialectOf(app.db).maxBindValues / columnsOf(app, "wide"));
    expect(max).toBeLessThan(1_000);
    expect(counted.statements().filter((k) => k === "InsertQueryNode")).toHaveLength(chunkSizes(1_000, max).length);
    expect(await count("wide")).toBe(1_000);
  });

  it("rows that leave fields out get each field's default or null, row by row (2.4)", async () => {
    const rows = (await app.module.data.create("posts", [
      { title: "a", status: "published", views: 3 },
      { title: "b" },
      { title: "c", views: 5 },
    ])) as Record<string, unknown>[];
    expect(rows.map(({ title, status, views, slug }) => ({ title, status, views, slug }))).toEqual([
      { title: "a", status: "published", views: 3, slug: null },
      { title: "b", status: "draft", views: null, slug: null },
      { title: "c", status: "draft", views: 5, slug: null },
    ]);
  });

  it("a unique collision anywhere in a bulk create, with a stored row or within the batch, writes nothing: 409 (2.4, 11.5)", async () => {
    await app.module.data.create("posts", { title: "taken", slug: "taken" });
    const before = await count("posts");
    const batch = (at: number, slug: string) =>
      range(1_000).map((i) => ({ title: `t${i}`, slug: i === at ? slug : `s-${at}-${i}` }));
    for (const input of [
      batch(0, "taken"),
      batch(700, "taken"),
      batch(999, "taken"),
      batch(900, "s-900-3"), // the same value as row 3 of the batch, in another statement
      batch(10, "s-10-11"), // and in the same statement
    ]) {
      const error = await app.module.data.create("posts", input).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as Error).message).toBe("a row with the same slug already exists");
      expect(await count("posts")).toBe(before);
    }
  });

  it("a collision in a 1,000-row create is found by halving, in a few dozen statements, not one per row (11.5)", async () => {
    await app.module.data.create("posts", { title: "taken too", slug: "taken-too" });
    const counted = countStatements(app);
    const input = range(1_000).map((i) => ({ title: `h${i}`, slug: i === 777 ? "taken-too" : `h-${i}` }));
    const error = await counted.data.create("posts", input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    const inserts = counted.statements().filter((k) => k === "InsertQueryNode").length;
    // on PostgreSQL the transaction runs twice: first without savepoints, then carefully to find the row
    expect(inserts).toBeLessThanOrEqual(ENGINE === "postgres" ? 2 * 6 + 6 + 2 * 10 : 6 + 2 * 10);
  });
});
