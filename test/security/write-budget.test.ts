/**
 * The byte budget (§2.3) of writes to many rows: an update-many or delete-many answers the rows it reached, and
 * their images before and after go to the audit trail and the outbox, so the rows it reaches (as stored, with
 * what it writes to each) must fit the budget like a page does. One past it is 400 naming the budget before
 * anything is written: the rows stay as they were. A review found update-many over 530 rows of 1 MB answering
 * 500 after 48 s, every other client waiting, with the update committed all the same.
 */
import { em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, READ_WRITE_ROLES, type Row } from "../guard/helpers.js";

const BUDGET = 8192;
/** Ten rows of this hold more than the budget; three hold less. */
const BODY = 1000;

const schema = em(
  {
    docs: entity(
      "docs",
      { title: text({ maxLength: 40 }), body: text(), secret: text() },
      { field_rules: { secret: { read: "@has_role('admin')" } } },
    ),
    users: entity("users", {}),
  },
  ({ docs, users }) => [relation(docs, "writer").manyToOne(users, { owner: true })],
);

const app = {
  config: {
    data: { ...(schema.toJSON() as object), max_response_bytes: BUDGET },
    auth: { enabled: true, roles: READ_WRITE_ROLES },
  },
};

describe("writes to many rows stay within the byte budget (2.3)", () => {
  let b: Booted<void>;
  const stored = () =>
    b.server.rows(
      `SELECT "id", "title", "body" FROM docs WHERE "title" <> 'small secret' AND "title" <> 'large secret' ORDER BY "id"`,
    );

  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user" },
      rows: async (ctx, ids) => {
        // rows whose hidden secret is short or longer than the whole budget: a write must not tell them apart
        for (const [title, secret] of [
          ["small secret", "s"],
          ["large secret", "s".repeat(3 * BUDGET)],
        ])
          await ctx.app.module.data.create(
            "docs",
            Array.from({ length: 3 }, () => ({ title, body: "short", secret, writer_id: ids.a })),
          );
      },
    });
    const made = await b.as(
      "a",
      "POST",
      "/api/data/docs",
      Array.from({ length: 10 }, (_, i) => ({ title: i < 3 ? "few" : "many", body: "x".repeat(BODY) })),
    );
    expect(made.status, made.text).toBe(201);
  });
  afterAll(async () => {
    await b?.server.close();
  });

  it("an update-many reaching more than the budget is 400 naming it, and changes nothing", async () => {
    const before = await stored();
    for (const path of ["/api/data/docs", "/api/data/entity/docs"]) {
      const res = await b.as("a", "PATCH", path, { update: { title: "renamed" }, where: { body: { $like: "x*" } } });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toMatch(/the 10 rows this write reaches hold [\d,]+ bytes.*max_response_bytes/);
      expect(res.body.error.max).toBe(BUDGET);
    }
    expect(await stored()).toEqual(before);
  });

  it("what an update writes to each row counts: a small where with a large value is refused too", async () => {
    const before = await stored();
    const res = await b.as("a", "PATCH", "/api/data/docs", {
      update: { body: "y".repeat(3 * BODY) },
      where: { title: "few" },
    });
    expect(res.status, res.text).toBe(400);
    expect(await stored()).toEqual(before);
  });

  it("a delete-many reaching more than the budget is 400, and deletes nothing", async () => {
    const before = await stored();
    const res = await b.as("a", "DELETE", "/api/data/docs", { body: { $like: "x*" } });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.message).toContain("max_response_bytes");
    expect(await stored()).toEqual(before);
  });

  it("holds what the caller reads and writes apart from what it cannot read: no padding finds a hidden length", async () => {
    const answers = new Map<string, { status: number; bytes?: number; message: string }[]>();
    for (const title of ["small secret", "large secret"]) {
      const seen = [];
      // what the caller writes to each row, from over the budget to one byte: the hidden part's answer never moves
      for (const size of [(2 * BUDGET) / 3, BUDGET / 8, 1]) {
        const res = await b.as("a", "PATCH", "/api/data/docs", {
          update: { body: "p".repeat(size) },
          where: { title },
        });
        seen.push({ status: res.status, bytes: res.body.error?.bytes, message: res.body.error?.message ?? "" });
      }
      answers.set(title, seen);
    }
    const small = answers.get("small secret")!;
    const big = answers.get("large secret")!;
    expect(small.map((a) => a.status)).toEqual([400, 200, 200]);
    expect(big.map((a) => a.status)).toEqual([400, 400, 400]);
    // over the budget in what the caller reads and writes: the same answer, to the byte, whatever is hidden
    expect(big[0]).toEqual(small[0]);
    expect(small[0]!.message).toMatch(/the 3 rows this write reaches hold [\d,]+ bytes as stored with what it writes/);
    // values it cannot read past the budget: one answer naming no size, whatever the caller writes
    expect(big[1]).toEqual(big[2]);
    expect(big[1]!.bytes).toBeUndefined();
    expect(big[1]!.message).toMatch(/more in values the caller cannot read.*at most 8,192 bytes per request/);
    // the same holds for a delete; the rows refused stay
    expect((await b.as("a", "DELETE", "/api/data/docs", { title: "small secret" })).status).toBe(200);
    const deleted = await b.as("a", "DELETE", "/api/data/docs", { title: "large secret" });
    expect(deleted.status, deleted.text).toBe(400);
    expect(deleted.body.error.message).toBe(big[1]!.message);
    const left = await b.server.rows(`SELECT "body" FROM docs WHERE "title" = 'large secret'`);
    expect(left.map((r) => r.body)).toEqual(["short", "short", "short"]);
  });

  it("an update or delete of one row the budget cannot answer is 400 like reading it, and changes nothing", async () => {
    const made = await b.as("a", "POST", "/api/data/docs", { title: "large", body: "z".repeat(BUDGET / 2) });
    expect(made.status, made.text).toBe(201);
    const id = made.body.data.id as number;
    const grown = await b.as("a", "PATCH", `/api/data/docs/${id}`, { title: "larger", body: "z".repeat(BUDGET) });
    expect(grown.status, grown.text).toBe(400);
    expect(grown.body.error).toMatchObject({ path: "id", max: BUDGET });
    expect((await b.as("a", "GET", `/api/data/docs/${id}`)).body.data.title).toBe("large");
    expect((await b.as("a", "PATCH", `/api/data/docs/${id}`, { title: "renamed" })).status).toBe(200);
    const removed = await b.as("a", "DELETE", `/api/data/docs/${id}`);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body.data.title).toBe("renamed");
  });

  it("writes within the budget answer their rows", async () => {
    const updated = await b.as("a", "PATCH", "/api/data/docs", { update: { title: "three" }, where: { title: "few" } });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.data.map((r: Row) => r.title)).toEqual(["three", "three", "three"]);
    const deleted = await b.as("a", "DELETE", "/api/data/docs", { title: "three" });
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body.data).toHaveLength(3);
    expect((await stored()).map((r) => r.title)).toEqual(Array(7).fill("many"));
  });
});
