/**
 * The byte budget (§2.3) of a page whose values are past their share, on rows where a per-row field rule (§9.4)
 * shows or hides them: a page reads each value within its share with its row and only the size of a larger
 * one, then the larger ones it may show by a second query. A value hidden on its row is neither counted nor
 * answered, not even as its size; one shown is answered whole, with its type (text, json).
 */
import { em, entity, json, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, READ_WRITE_ROLES, type Row } from "../guard/helpers.js";

const BUDGET = 16_384;
/** Past the share of a page of 10 (the budget over 10 rows of 4 measured fields: 409 bytes), within the budget. */
const LONG = 3000;
/** More than the whole budget. */
const HUGE = 20_000;

const schema = em(
  {
    notes: entity(
      "notes",
      // title is bounded (at most 120 bytes): within its share, it is read as it is
      { title: text({ maxLength: 40 }), body: text(), secret: text(), data: json() },
      { field_rules: { secret: { read: "@owns_record()" } } },
    ),
    users: entity("users", {}),
  },
  ({ notes, users }) => [relation(notes, "writer").manyToOne(users, { owner: true })],
);

const app = {
  config: {
    data: { ...(schema.toJSON() as object), max_response_bytes: BUDGET },
    auth: { enabled: true, roles: READ_WRITE_ROLES },
  },
};

describe("values past their share under per-row field rules (2.3, 9.4)", () => {
  let b: Booted<void>;
  beforeAll(async () => {
    b = await boot(app, {
      users: { a: "user", b: "user" },
      rows: async (ctx, ids) => {
        await ctx.app.module.data.create("notes", [
          {
            title: "A",
            body: "b".repeat(LONG),
            secret: "s".repeat(LONG),
            data: { blob: "d".repeat(LONG) },
            writer_id: ids.a,
          },
          { title: "B", body: "short", secret: "t".repeat(HUGE), data: null, writer_id: ids.b },
        ]);
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const list = (who: string) => b.as(who, "GET", "/api/data/notes?sort=id&limit=10");

  it("a value shown on its row is answered whole and typed; one hidden is absent, not its size (2.3, 9.4)", async () => {
    const res = await list("a");
    expect(res.status, res.text).toBe(200);
    const [mine, theirs] = res.body.data as Row[];
    expect(mine).toMatchObject({ title: "A", body: "b".repeat(LONG), secret: "s".repeat(LONG) });
    expect(mine!.data).toEqual({ blob: "d".repeat(LONG) });
    // b's secret alone is over the budget: hidden from a, it is not counted either
    expect(theirs).toMatchObject({ title: "B", body: "short", data: null });
    expect(theirs).not.toHaveProperty("secret");
    expect(Object.keys(mine!).filter((k) => k.startsWith("__"))).toEqual([]);
    expect(Object.keys(theirs!).filter((k) => k.startsWith("__"))).toEqual([]);
  });

  it("a caller who may read no secret sees none, and the page fits (2.3, 9.4)", async () => {
    const res = await list(ANON);
    expect(res.status, res.text).toBe(200);
    for (const row of res.body.data as Row[]) expect(row).not.toHaveProperty("secret");
    expect((res.body.data as Row[]).map((r) => typeof r.body)).toEqual(["string", "string"]);
  });

  it("the value shown to its owner counts: over the budget is 400 naming it (2.3)", async () => {
    const res = await list("b");
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toMatchObject({ code: "bad_request", path: "limit", max: BUDGET });
    expect(res.body.error.bytes).toBeGreaterThan(HUGE);
    const narrow = await b.as("b", "GET", "/api/data/notes?sort=id&limit=10&select=id,title,body,data");
    expect(narrow.status, narrow.text).toBe(200);
    expect((narrow.body.data as Row[])[0]!.body).toBe("b".repeat(LONG));
  });
});
