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
      `SELECT "id", "title", "body" FROM docs WHERE "title" <> 'small secret' AND "title" <> 'big secret' ORDER BY "id"`,
    );

  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user" },
      rows: async (ctx, ids) => {
        // rows whose hidden secret is short or longer than the whole budget: a write must not tell them apart
        for (const [title, secret] of [
          ["small secret", "s"],
          ["big secret", "s".repeat(3 * BUDGET)],
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

  it("counts only what the caller may read: a hidden value's length is no oracle", async () => {
    for (const title of ["small secret", "big secret"]) {
      const updated = await b.as("a", "PATCH", "/api/data/docs", { update: { body: "edited" }, where: { title } });
      expect(updated.status, updated.text).toBe(200);
      expect(updated.body.data).toHaveLength(3);
      expect(updated.body.data[0]).not.toHaveProperty("secret");
      const deleted = await b.as("a", "DELETE", "/api/data/docs", { title });
      expect(deleted.status, deleted.text).toBe(200);
    }
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
