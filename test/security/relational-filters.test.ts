/**
 * §4.13 relational filters: relation paths (`post.published`, `{ post: {…} }`, `$some/$none/$every`) and
 * `$exists` with `@row.<field>`, in policy filters (trusted) and in callers' where (each hop under the
 * caller's own read permission: its filter inside the subquery, its field rules on the names used).
 */
import { boolean, em, entity, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, guardedApp, insert, q } from "../guard/helpers.js";

const schema = em(
  {
    teams: entity("teams", { name: text().required() }),
    members: entity("members", { role: text() }),
    notes: entity("notes", { title: text().required(), private: boolean().default(false), code: text() }),
    comments: entity("comments", { body: text().required(), approved: boolean().default(false) }),
    tags: entity("tags", { name: text().required() }),
    users: entity("users", {}),
  },
  ({ teams, members, notes, comments, tags, users }) => [
    relation(members, "team").manyToOne(teams),
    relation(members, "user").manyToOne(users),
    relation(notes, "team").manyToOne(teams),
    relation(comments, "note").manyToOne(notes),
    relation(notes, "tags").manyToMany(tags),
  ],
);

const READ = "data.entity.read";
const memberOfTeam = { $exists: { entity: "members", where: { team_id: "@row.team_id", user_id: "@user.id" } } };

const app = guardedApp(schema, {
  anonymous: {
    is_default: true,
    permissions: [
      {
        permission: READ,
        policies: [
          // anonymous: public notes, and comments on public notes only (a relation path in a policy filter)
          { condition: { entity: "notes" }, effect: "filter", filter: { private: false }, omit: ["code"] },
          { condition: { entity: "comments" }, effect: "filter", filter: { "note.private": false } },
          { condition: { entity: "tags" }, effect: "allow" },
          { condition: { entity: "teams" }, effect: "allow" },
        ],
      },
    ],
  },
  user: {
    permissions: [
      {
        permission: READ,
        policies: [
          // notes of teams the caller is a member of ($exists with @row), public ones for everyone
          {
            condition: { entity: "notes" },
            effect: "filter",
            filter: { $or: [{ private: false }, memberOfTeam] },
          },
          { condition: { entity: "members" }, effect: "filter", filter: { user_id: "@user.id" } },
          { condition: { entity: { $in: ["comments", "tags", "teams"] } }, effect: "allow" },
        ],
      },
    ],
  },
});

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: { ann: "user", bob: "user" },
    rows: async (ctx, ids) => {
      await insert(ctx, "teams", [{ name: "red" }, { name: "blue" }]);
      await insert(ctx, "members", [{ team_id: 1, user_id: ids.ann }]);
      await insert(ctx, "notes", [
        { title: "public red", private: false, team_id: 1, code: "c1" },
        { title: "private red", private: true, team_id: 1, code: "c2" },
        { title: "private blue", private: true, team_id: 2, code: "c3" },
      ]);
      await insert(ctx, "comments", [
        { body: "on public", note_id: 1, approved: true },
        { body: "on private red", note_id: 2, approved: true },
        { body: "on private blue", note_id: 3, approved: false },
      ]);
      await insert(ctx, "tags", [{ name: "x" }, { name: "y" }]);
    },
  });
  // tags on notes: note 1 has x, note 2 has x and y (through the junction, by a trusted write)
  const db = b.server.app.db;
  await db
    .insertInto("notes_tags")
    .values([
      { notes_id: 1, tags_id: 1 },
      { notes_id: 2, tags_id: 1 },
      { notes_id: 2, tags_id: 2 },
    ])
    .execute()
    .catch(() => undefined);
});
afterAll(() => b.server.close());

const ids = (res: { status: number; text: string; body: { data: { id: number }[] } }) => {
  expect(res.status, res.text).toBe(200);
  return res.body.data.map((r) => r.id);
};

describe("relational filters in policies (4.13)", () => {
  it("a policy filter follows a relation: anonymous sees only comments on public notes (4.13)", async () => {
    expect(ids(await b.as(ANON, "GET", "/api/data/comments?sort=id"))).toEqual([1]);
    expect((await b.as(ANON, "GET", "/api/data/comments/2")).status).toBe(404);
    expect((await b.as(ANON, "GET", "/api/data/comments/count")).body.data.count).toBe(1);
  });

  it("$exists with @row: members read their team's private notes, others do not (4.13)", async () => {
    expect(ids(await b.as("ann", "GET", "/api/data/notes?sort=id"))).toEqual([1, 2]);
    expect(ids(await b.as("bob", "GET", "/api/data/notes?sort=id"))).toEqual([1]);
    expect((await b.as("bob", "GET", "/api/data/notes/2")).status).toBe(404);
  });
});

describe("relational filters in a caller's where (4.13)", () => {
  it("a to-one path, in both spellings (4.13)", async () => {
    const dotted = await b.as("ann", "GET", `/api/data/comments?sort=id&where=${q({ "note.private": false })}`);
    const nested = await b.as("ann", "GET", `/api/data/comments?sort=id&where=${q({ note: { private: false } })}`);
    expect(ids(dotted)).toEqual([1]);
    expect(ids(nested)).toEqual([1]);
  });

  it("each hop is read under the caller's own permission: a hidden note matches nothing (4.13)", async () => {
    // bob cannot read note 3; a where through it must not reveal its title
    const probe = await b.as("bob", "GET", `/api/data/comments?where=${q({ note: { title: "private blue" } })}`);
    expect(ids(probe)).toEqual([]);
    const own = await b.as("ann", "GET", `/api/data/comments?where=${q({ note: { title: "private red" } })}`);
    expect(ids(own)).toEqual([2]);
  });

  it("a field the caller may not read is 400 through a path as well (4.13, 4.8)", async () => {
    const res = await b.as(ANON, "GET", `/api/data/comments?where=${q({ "note.code": "c1" })}`);
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('c1"');
    // the path names the condition as written, once
    for (const where of [{ "note.code": "c1" }, { note: { code: "c1" } }])
      expect((await b.as(ANON, "GET", `/api/data/comments?where=${q(where)}`)).body.error.path).toBe("where.note.code");
  });

  it("$some, $none and $every on to-many relations, including many-to-many (4.13)", async () => {
    const some = await b.as("ann", "GET", `/api/data/notes?sort=id&where=${q({ tags: { $some: { name: "y" } } })}`);
    expect(ids(some)).toEqual([2]);
    const none = await b.as("ann", "GET", `/api/data/notes?sort=id&where=${q({ tags: { $none: { name: "y" } } })}`);
    expect(ids(none)).toEqual([1]);
    const every = await b.as("ann", "GET", `/api/data/notes?sort=id&where=${q({ tags: { $every: { name: "x" } } })}`);
    expect(ids(every)).toEqual([1]); // note 2 has y too; no note without tags is visible to ann
    const approved = await b.as(
      "ann",
      "GET",
      `/api/data/teams?sort=id&where=${q({ $exists: { entity: "notes", where: { team_id: "@row.id", private: true } } })}`,
    );
    expect(ids(approved)).toEqual([1]);
  });

  it("a to-many relation without a quantifier, an unknown relation and too many hops are 400 (4.13)", async () => {
    const bare = await b.as("ann", "GET", `/api/data/notes?where=${q({ tags: { name: "x" } })}`);
    expect(bare.status).toBe(400);
    expect(bare.body.error.message).toContain("$some");
    expect((await b.as("ann", "GET", `/api/data/notes?where=${q({ nope: { name: "x" } })}`)).status).toBe(400);
    const deep = { note: { team: { $exists: { entity: "notes", where: { team: { name: "red", note: {} } } } } } };
    const res = await b.as("ann", "GET", `/api/data/comments?where=${q(deep)}`);
    expect(res.status).toBe(400);
  });

  it("$exists on an entity the caller cannot read is 400 like an unknown one (4.13)", async () => {
    const hidden = await b.as(ANON, "GET", `/api/data/teams?where=${q({ $exists: { entity: "members", where: {} } })}`);
    const unknown = await b.as(ANON, "GET", `/api/data/teams?where=${q({ $exists: { entity: "nope", where: {} } })}`);
    expect(hidden.status).toBe(400);
    expect(unknown.status).toBe(400);
  });

  it("no caller's path can widen the guard: anonymous cannot reach private notes through comments (4.3a, 4.13)", async () => {
    const res = await b.as(
      ANON,
      "GET",
      `/api/data/comments?where=${q({ $or: [{ "note.private": true }, { id: 2 }] })}`,
    );
    expect(ids(res)).toEqual([]);
  });
});
