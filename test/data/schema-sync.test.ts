/** §1.4: startup syncs the schema additively and refuses destructive differences, naming the SQL. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { boolean, createApp, em, entity, enumm, type Field, json, number, relation, text } from "citadel";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { ENGINE_DRIVERS, startServer } from "../helpers/server.js";
import { create, q } from "./fixtures.js";

const v1 = em(
  {
    posts: entity("posts", { title: text().required(), content: text(), views: number({ integer: true }) }),
    users: entity("users", {}),
  },
  ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
);

/** v1 plus a field on posts, a new entity and a relation to it. */
const v2 = em(
  {
    posts: entity("posts", {
      title: text().required(),
      content: text(),
      views: number({ integer: true }),
      subtitle: text(),
      featured: boolean().default(false),
    }),
    users: entity("users", {}),
    notes: entity("notes", { body: text().required() }),
  },
  ({ posts, users, notes }) => [relation(posts, "author").manyToOne(users), relation(notes, "post").manyToOne(posts)],
);

/** v2 without `content`. */
const removed = em(
  {
    posts: entity("posts", {
      title: text().required(),
      views: number({ integer: true }),
      subtitle: text(),
      featured: boolean().default(false),
    }),
    users: entity("users", {}),
    notes: entity("notes", { body: text().required() }),
  },
  ({ posts, users, notes }) => [relation(posts, "author").manyToOne(users), relation(notes, "post").manyToOne(posts)],
);

/** v2 with `views` turned into text. */
const retyped = em(
  {
    posts: entity("posts", {
      title: text().required(),
      content: text(),
      views: text(),
      subtitle: text(),
      featured: boolean().default(false),
    }),
    users: entity("users", {}),
    notes: entity("notes", { body: text().required() }),
  },
  ({ posts, users, notes }) => [relation(posts, "author").manyToOne(users), relation(notes, "post").manyToOne(posts)],
);

const cfg = (s: { toJSON(): ReturnType<typeof v1.toJSON> }) => ({ data: s.toJSON() });

describe.each(ENGINE_DRIVERS)("schema sync on startup (%s)", (driver) => {
  const dir = mkdtempSync(join(tmpdir(), `citadel-sync-${driver}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const readPosts = async (config: ReturnType<typeof cfg>) => {
    const server = await startServer(config, { driver, dir });
    try {
      const res = await server.request("GET", "/api/data/posts?sort=id");
      expect(res.status, res.text).toBe(200);
      return res.body.data;
    } finally {
      await server.close();
    }
  };

  it("a first start creates the tables; rows persist across a restart (1.4)", async () => {
    const server = await startServer(cfg(v1), { driver, dir });
    try {
      const user = await create(server, "users", { email: "sync@example.com" });
      await create(server, "posts", [
        { title: "one", content: "c1", views: 1, author_id: user.id },
        { title: "two", content: "c2", views: 2 },
      ]);
    } finally {
      await server.close();
    }
    const rows = await readPosts(cfg(v1));
    expect(rows.map((r: { title: string }) => r.title)).toEqual(["one", "two"]);
  });

  it("an added field, entity and relation are synced additively; old rows stay (1.4)", async () => {
    const server = await startServer(cfg(v2), { driver, dir });
    try {
      const list = await server.request("GET", "/api/data/posts");
      expect(list.body.data).toHaveLength(2);
      expect(list.body.data[0]).toMatchObject({ title: "one", content: "c1", views: 1, subtitle: null });
      expect(list.body.data[0].author_id).not.toBeNull();
      const created = await create(server, "posts", { title: "three", subtitle: "sub", featured: true });
      expect(created).toMatchObject({ subtitle: "sub", featured: true });
      const patched = await server.request("PATCH", `/api/data/posts/${list.body.data[0].id}`, { subtitle: "new" });
      expect(patched.status, patched.text).toBe(200);
      expect(patched.body.data).toMatchObject({ title: "one", subtitle: "new" });
      const note = await create(server, "notes", { body: "a note", post_id: created.id });
      expect(note.post_id).toBe(created.id);
      const withNotes = await server.request("GET", `/api/data/posts/${created.id}?with=notes`);
      expect(withNotes.body.data.notes.map((n: { body: string }) => n.body)).toEqual(["a note"]);
    } finally {
      await server.close();
    }
  });

  it("a removed field refuses startup naming the destructive SQL (1.4)", async () => {
    const err = await startServer(cfg(removed), { driver, dir }).then(
      () => new Error("startup should have been refused"),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).not.toBe("startup should have been refused");
    expect(message).toMatch(/destructive/i);
    expect(message).toMatch(/drop column/i);
    expect(message).toContain("content");
  });

  it("a changed field type refuses startup as destructive (1.4)", async () => {
    const err = await startServer(cfg(retyped), { driver, dir }).then(
      () => new Error("startup should have been refused"),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).not.toBe("startup should have been refused");
    expect(message).toMatch(/destructive/i);
    expect(message).toContain("views");
  });

  it("after a refusal the unchanged schema starts again and the data is intact (1.4)", async () => {
    const rows = await readPosts(cfg(v2));
    expect(rows.map((r: { title: string; content: string | null }) => [r.title, r.content])).toEqual([
      ["one", "c1"],
      ["two", "c2"],
      ["three", null],
    ]);
    expect(rows[0].subtitle).toBe("new");
    expect(rows[1].views).toBe(2);
  });
});

/** Notes before and after a defaulted field, a changed default, a new column and a rename. */
const notesV1 = em({ notes: entity("notes", { title: text().required() }) });
function notesWith(opts: { pinned: boolean; renamed?: boolean; extra?: boolean }) {
  const fields: Record<string, Field> = opts.renamed
    ? { headline: text().required().renamedFrom("title") }
    : { title: text().required() };
  fields.pinned = boolean().default(opts.pinned);
  fields.status = enumm({ enum: ["draft", "published"] }).default("draft");
  fields.meta = json().default({ tags: ["a"], quote: "it's" });
  fields.rank = number().default(-1.5);
  if (opts.extra) fields.extra = text().default("x");
  return em({ notes: entity("notes", fields) });
}
const notesDefaults = notesWith({ pinned: false });
const notesRedefaulted = notesWith({ pinned: true });
const notesRedefaultedAndGrown = notesWith({ pinned: true, extra: true });
const notesRenamed = notesWith({ pinned: true, renamed: true });

describe.each(ENGINE_DRIVERS)("column defaults and renames across restarts (%s)", (driver) => {
  const dir = mkdtempSync(join(tmpdir(), `citadel-defaults-${driver}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const start = (s: { toJSON(): ReturnType<typeof v1.toJSON> }, destructive = false) =>
    startServer(cfg(s), { driver, dir, options: { destructive } });
  const titles = (res: { body: { data: { title?: string; headline?: string }[] } }) =>
    res.body.data.map((r) => r.title ?? r.headline);

  it("a new field with a default is a column with that default: old rows get it (1.4)", async () => {
    const first = await start(notesV1);
    try {
      await create(first, "notes", [{ title: "old one" }, { title: "old two" }]);
    } finally {
      await first.close();
    }
    const server = await start(notesDefaults);
    try {
      const unpinned = await server.request("GET", `/api/data/notes?sort=id&where=${q({ pinned: false })}`);
      expect(unpinned.status, unpinned.text).toBe(200);
      expect(titles(unpinned)).toEqual(["old one", "old two"]);
      const created = await create(server, "notes", { title: "new" });
      const all = await server.request("GET", "/api/data/notes?sort=id");
      const { id: _, created_at: __, updated_at: ___, title: ____, ...defaults } = created;
      // an old row reads exactly like one created through the API without those fields
      for (const row of all.body.data) expect(row).toMatchObject(defaults);
      expect(defaults).toEqual({ pinned: false, status: "draft", meta: { tags: ["a"], quote: "it's" }, rank: -1.5 });
      const drafts = await server.request("GET", `/api/data/notes?sort=id&where=${q({ status: "draft", rank: -1.5 })}`);
      expect(titles(drafts)).toEqual(["old one", "old two", "new"]);
    } finally {
      await server.close();
    }
  });

  it("a changed default is not destructive: startup goes on, rows keep their values (1.4)", async () => {
    const server = await start(notesRedefaulted);
    try {
      const all = await server.request("GET", "/api/data/notes?sort=id");
      expect(all.body.data.map((r: { pinned: boolean }) => r.pinned)).toEqual([false, false, false]);
      expect((await create(server, "notes", { title: "after" })).pinned).toBe(true);
      // Only an insert made outside Citadel still sees the database's old default ...
      await sql`insert into notes (title) values ('outside')`.execute(server.app.db);
      const outside = await server.request("GET", `/api/data/notes?where=${q({ title: "outside" })}`);
      expect(outside.body.data[0].pinned).toBe(false);
    } finally {
      await server.close();
    }
    // ... until the explicit destructive sync rebuilds the table, keeping every row.
    const rebuilt = await start(notesRedefaulted, true);
    try {
      await sql`insert into notes (title) values ('outside again')`.execute(rebuilt.app.db);
      const all = await rebuilt.request("GET", "/api/data/notes?sort=id");
      expect(all.body.data.map((r: { title: string; pinned: boolean }) => [r.title, r.pinned])).toEqual([
        ["old one", false],
        ["old two", false],
        ["new", false],
        ["after", true],
        ["outside", false],
        ["outside again", true],
      ]);
    } finally {
      await rebuilt.close();
    }
  });

  it("a changed default and a new column together, synced with --destructive, add the column once (1.4)", async () => {
    const own = mkdtempSync(join(tmpdir(), `citadel-grown-${driver}-`));
    const at = (s: { toJSON(): ReturnType<typeof v1.toJSON> }, destructive = false) =>
      startServer(cfg(s), { driver, dir: own, options: { destructive } });
    try {
      const first = await at(notesDefaults);
      await create(first, "notes", [{ title: "one" }, { title: "two" }]);
      await first.close();
      const rebuilt = await at(notesRedefaultedAndGrown, true);
      const rows = (await rebuilt.request("GET", "/api/data/notes?sort=id")).body.data;
      await rebuilt.close();
      expect(rows.map((r: { title: string; extra: string }) => [r.title, r.extra])).toEqual([
        ["one", "x"],
        ["two", "x"],
      ]);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("a declared rename keeps the column's data, and the next start has nothing to do (1.4)", async () => {
    for (let run = 0; run < 2; run++) {
      const server = await start(notesRenamed);
      try {
        const list = await server.request("GET", `/api/data/notes?sort=id&where=${q({ headline: "old one" })}`);
        expect(list.status, list.text).toBe(200);
        expect(list.body.data).toHaveLength(1);
        expect(list.body.data[0]).not.toHaveProperty("title");
        if (run === 0) await create(server, "notes", { headline: "renamed" });
        const all = await server.request("GET", "/api/data/notes?sort=id");
        expect(titles(all)).toEqual(["old one", "old two", "new", "after", "outside", "outside again", "renamed"]);
      } finally {
        await server.close();
      }
    }
  });

  it("a rename whose new column exists already is a destructive difference, not a guess (1.4)", async () => {
    const stray = em({
      notes: entity("notes", {
        headline: text().required(),
        pinned: boolean().default(true).renamedFrom("status"),
        meta: json().default({ tags: ["a"], quote: "it's" }),
        rank: number().default(-1.5),
      }),
    });
    const err = await start(stray).then(
      () => new Error("startup should have been refused"),
      (e: unknown) => e as Error,
    );
    expect(err.message).toMatch(/destructive/i);
    expect(err.message).toContain('drop column "status" (declared renamed to "pinned", which exists already)');
  });
});

describe("renamedFrom in the config (1.4, 1.5)", () => {
  const start = (s: { toJSON(): ReturnType<typeof v1.toJSON> }) =>
    createApp({ connection: { url: ":memory:" }, config: cfg(s) });

  it("may not name a field or key column the entity still has, nor be claimed twice", async () => {
    const path = "config.data.entities.posts.fields";
    const still = em({ posts: entity("posts", { headline: text().renamedFrom("title"), title: text() }) });
    await expect(start(still)).rejects.toThrow(`${path}.headline.config.renamedFrom: "title" is still a field`);
    const key = em(
      { posts: entity("posts", { writer: number().renamedFrom("author_id") }), users: entity("users", {}) },
      ({ posts, users }) => [relation(posts, "author").manyToOne(users)],
    );
    await expect(start(key)).rejects.toThrow(`${path}.writer.config.renamedFrom: "author_id" is still a field`);
    const twice = em({ posts: entity("posts", { a: text().renamedFrom("old"), b: text().renamedFrom("old") }) });
    await expect(start(twice)).rejects.toThrow(
      `${path}.b.config.renamedFrom: another field is already renamed from "old"`,
    );
    const odd = em({ posts: entity("posts", { a: text().renamedFrom("Old Name") }) });
    await expect(start(odd)).rejects.toThrow(`${path}.a.config.renamedFrom: field names are lowercase`);
  });

  it("is part of the field's JSON, as bknd-shaped config", () => {
    expect(text().renamedFrom("title").toJSON()).toEqual({ type: "text", config: { renamedFrom: "title" } });
  });
});
