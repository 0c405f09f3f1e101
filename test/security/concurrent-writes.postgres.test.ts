/**
 * §4.6 under concurrency (11.2): a write decides on the row as it is when it writes, not as it was a moment
 * before. PostgreSQL runs READ COMMITTED: without a row lock, a PATCH could check a draft, wait for another
 * transaction that publishes it, then write the published row — which its permission does not reach. Here
 * a second connection holds that transaction open while the request arrives, and commits once the request
 * waits for it. (On SQLite and libSQL a writer holds the whole database: no other transaction can move the row
 * between the request's check and its write, so this file runs on PostgreSQL only.)
 */
import { em, entity, text } from "citadel";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot } from "../guard/helpers.js";
import { lockWaitSeen } from "../helpers/engines.js";

const schema = em({ notes: entity("notes", { body: text().required(), status: text().required() }) });
const drafts = { condition: { entity: "notes" }, effect: "filter" as const, filter: { status: "draft" } };
const config = {
  data: schema.toJSON(),
  auth: {
    enabled: true,
    roles: {
      anonymous: { is_default: true },
      editor: {
        permissions: [
          "data.entity.read",
          { permission: "data.entity.update", policies: [drafts] },
          { permission: "data.entity.delete", policies: [drafts] },
        ],
      },
      admin: { implicit_allow: true },
    },
  },
};

let b: Booted<void>;
let other: pg.Client;
beforeAll(async () => {
  b = await boot({ config }, { users: { eve: "editor", root: "admin" } });
  other = new pg.Client({ connectionString: b.server.connection.url });
  await other.connect();
});
afterAll(async () => {
  await other?.end();
  await b?.server.close();
});

/** A draft, published by the other connection in a transaction left open until `commit()`. */
async function publishedMeanwhile(body: string) {
  const created = await b.as("root", "POST", "/api/data/notes", { body, status: "draft" });
  const id = created.body.data.id as number;
  await other.query("begin");
  await other.query("update notes set status = 'published' where id = $1", [id]);
  return {
    id,
    /** Commit once a request waits on the row's lock, so the request decided before the commit. */
    async commitWhenBlocked() {
      await lockWaitSeen(other);
      await other.query("commit");
    },
  };
}

describe("a row a concurrent transaction moves out of the write scope (4.6, 11.2)", () => {
  it("PATCH /:id decides on the committed row: 403, the row keeps the other transaction's values", async () => {
    const note = await publishedMeanwhile("original");
    const [res] = await Promise.all([
      b.as("eve", "PATCH", `/api/data/notes/${note.id}`, { body: "sneaky", status: "draft" }),
      note.commitWhenBlocked(),
    ]);
    expect(res.status, res.text).toBe(403);
    expect(await b.server.rows("select body, status from notes where id = ?", note.id)).toEqual([
      { body: "original", status: "published" },
    ]);
  });

  it("PATCH with a where skips the row: nothing is written", async () => {
    const note = await publishedMeanwhile("original many");
    const [res] = await Promise.all([
      b.as("eve", "PATCH", "/api/data/notes", { where: { id: note.id }, update: { body: "sneaky", status: "draft" } }),
      note.commitWhenBlocked(),
    ]);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([]);
    expect(await b.server.rows("select body, status from notes where id = ?", note.id)).toEqual([
      { body: "original many", status: "published" },
    ]);
  });

  it("DELETE /:id decides on the committed row: 403, the row stays", async () => {
    const note = await publishedMeanwhile("keep me");
    const [res] = await Promise.all([b.as("eve", "DELETE", `/api/data/notes/${note.id}`), note.commitWhenBlocked()]);
    expect(res.status, res.text).toBe(403);
    expect(await b.server.rows("select body from notes where id = ?", note.id)).toEqual([{ body: "keep me" }]);
  });

  it("a draft nobody touches is still the editor's to change", async () => {
    const created = await b.as("root", "POST", "/api/data/notes", { body: "plain", status: "draft" });
    const res = await b.as("eve", "PATCH", `/api/data/notes/${created.body.data.id}`, { body: "edited" });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject({ body: "edited", status: "draft" });
  });
});
