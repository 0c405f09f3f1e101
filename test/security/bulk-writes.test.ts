/**
 * A bulk create (§11.5: a few multi-row INSERTs) keeps every guarantee of a one-row create: each row is
 * write-checked inside the transaction (§4.6), gets its owner (§4.14), and meets a hidden row's unique value or
 * a hidden reference with the same answer as a free value or a missing row (§4.17), wherever in the batch and
 * in whichever INSERT of it that row falls.
 */
import { boolean, type CreateAppInput, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, dbRows, insert } from "../guard/helpers.js";

const schema = em(
  {
    folders: entity("folders", { name: text() }),
    notes: entity("notes", { body: text().required(), slug: text().unique(), shared: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ folders, notes, users }) => [
    relation(folders, "owner").manyToOne(users, { owner: true }),
    relation(notes, "writer").manyToOne(users, { owner: true }),
    relation(notes, "folder").manyToOne(folders),
  ],
);

const mine = { effect: "filter" as const, filter: { $owner: true } };
const app: CreateAppInput = {
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        member: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { entity: { $in: ["notes", "folders"] } }, ...mine }],
            },
            // a member creates only unshared notes: the write check has a column to refuse on
            {
              permission: "data.entity.create",
              policies: [{ condition: { entity: "notes" }, effect: "filter", filter: { shared: false } }],
            },
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};

const ROWS = 1_000;
const MISSING = 99_999;
let b: Booted<void>;
let folder: { ann: number; bob: number };
beforeAll(async () => {
  b = await boot(app, {
    users: { ann: "member", bob: "member", root: "admin" },
    rows: async (ctx, ids) => {
      const [annFolder, bobFolder] = await insert(ctx, "folders", [
        { name: "ann's", owner_id: ids.ann },
        { name: "bob's", owner_id: ids.bob },
      ]);
      folder = { ann: annFolder!.id, bob: bobFolder!.id };
      await insert(ctx, "notes", [
        { body: "ann's", slug: "ann-own", writer_id: ids.ann },
        { body: "bob's", slug: "bob-hidden", writer_id: ids.bob },
      ]);
    },
  });
});
afterAll(() => b.server.close());

const notes = async () => (await dbRows(b.server, "SELECT count(*) AS n FROM notes"))[0]!.n as number;

/** ROWS notes for ann, row `at` changed by `change` (several rows: several changes). */
function batch(changes: Record<number, Record<string, unknown>>): Record<string, unknown>[] {
  return Array.from({ length: ROWS }, (_, i) => ({ body: `n${i}`, slug: `bulk-${i}`, ...changes[i] }));
}

/** Both batches answer byte-identical bodies with the same status, and neither writes anything. */
async function same(hidden: unknown, free: unknown): Promise<{ status: number; text: string }> {
  const before = await notes();
  const h = await b.as("ann", "POST", "/api/data/notes", hidden);
  const f = await b.as("ann", "POST", "/api/data/notes", free);
  expect(h.status, `hidden: ${h.text} / free: ${f.text}`).toBe(f.status);
  expect(h.text).toBe(f.text);
  expect(await notes()).toBe(before);
  return { status: h.status, text: h.text };
}

describe("bulk creates under the guard (4.6, 4.14, 4.17, 11.5)", () => {
  it("every row of a 1,000-row create is write-checked: one row outside the filter is 403 and nothing is written (4.6)", async () => {
    const before = await notes();
    for (const at of [0, 600, 999]) {
      const res = await b.as("ann", "POST", "/api/data/notes", batch({ [at]: { shared: true } }));
      expect(res.status, res.text).toBe(403);
      expect(res.body.error.message).toContain("the row as written would be outside");
      expect(await notes()).toBe(before);
    }
  });

  it("each row of a 1,000-row create gets the caller as its owner, answered in input order (4.14)", async () => {
    const res = await b.as("ann", "POST", "/api/data/notes", batch({}));
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.map((r: { body: string }) => r.body)).toEqual(batch({}).map((r) => r.body));
    const ids: number[] = res.body.data.map((r: { id: number }) => r.id);
    const owners = await dbRows(b.server, `SELECT DISTINCT writer_id FROM notes WHERE id IN (${ids.join(",")})`);
    expect(owners).toEqual([{ writer_id: b.ids.ann }]);
    await b.as("root", "DELETE", "/api/data/notes", { id: { $in: ids } });
  });

  it("a unique value held by a hidden row anywhere in a batch answers like one held by the caller's own row (4.17)", async () => {
    for (const at of [0, 700, 999]) {
      const res = await same(batch({ [at]: { slug: "bob-hidden" } }), batch({ [at]: { slug: "ann-own" } }));
      expect(JSON.parse(res.text)).toEqual({
        error: { code: "conflict", message: "a row with the same slug already exists" },
      });
    }
  });

  it("a batch refused by the write check is refused the same way whether a row's unique value is taken by a hidden row (4.17)", async () => {
    // the refused row before the colliding one, and after it, in the same INSERT and in another
    for (const [refused, colliding] of [
      [300, 700],
      [700, 300],
      [10, 11],
      [999, 0],
    ] as const) {
      const res = await same(
        batch({ [refused]: { shared: true }, [colliding]: { slug: "bob-hidden" } }),
        batch({ [refused]: { shared: true }, [colliding]: { slug: "free-value" } }),
      );
      expect(res.status).toBe(403);
    }
  });

  it("a row linking a hidden folder answers like one linking a missing folder, with or without a collision (4.17)", async () => {
    const linked = await same(batch({ 500: { folder_id: folder.bob } }), batch({ 500: { folder_id: MISSING } }));
    expect(linked.status).toBe(409);
    const both = await same(
      batch({ 500: { folder_id: folder.bob }, 800: { slug: "bob-hidden" } }),
      batch({ 500: { folder_id: MISSING }, 800: { slug: "ann-own" } }),
    );
    expect(both).toEqual(linked);
    const ok = await b.as("ann", "POST", "/api/data/notes", batch({ 500: { folder_id: folder.ann } }));
    expect(ok.status, ok.text).toBe(201);
  });
});
