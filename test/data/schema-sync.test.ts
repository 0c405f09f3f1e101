/** §1.4: startup syncs the schema additively and refuses destructive differences, naming the SQL. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { boolean, em, entity, number, relation, text } from "citadel";
import { afterAll, describe, expect, it } from "vitest";
import { DRIVERS, startServer } from "../helpers/server.js";
import { create } from "./fixtures.js";

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

describe.each(DRIVERS)("schema sync on startup (%s)", (driver) => {
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
