/**
 * Constraint errors are not oracles (§4.17): a write whose unique value or reference collides with a row the caller
 * cannot read answers exactly as it would if that row did not exist. Every test compares the raw response bodies
 * of the hidden-row case and the missing-row (or free-value) case byte for byte, and checks nothing was written.
 */
import { boolean, type CreateAppInput, em, entity, index, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, dbRows, insert } from "../guard/helpers.js";

const schema = em(
  {
    workspaces: entity("workspaces", { slug: text().required().unique(), name: text() }),
    docs: entity("docs", { title: text().required(), pinned: boolean().default(false) }),
    profiles: entity("profiles", { bio: text() }),
    seats: entity("seats", { label: text().required(), tier: text().default("gold") }),
    users: entity("users", { nickname: text() }),
    notes: entity("notes", { title: text().required() }),
  },
  ({ workspaces, docs, profiles, seats, users, notes }) => [
    relation(workspaces, "owner").manyToOne(users),
    relation(docs, "workspace").manyToOne(workspaces),
    relation(docs, "owner").manyToOne(users),
    relation(profiles, "user").oneToOne(users),
    index(seats).on(["label", "tier"], true),
    relation(notes, "author").manyToOne(users, { owner: true }),
    relation(notes, "assignee").manyToOne(users, { inversedBy: "assigned" }),
  ],
);

const own = { owner_id: "@user.id" };
const ownRows = (entities: string[]) => ({
  condition: { entity: { $in: entities } },
  effect: "filter" as const,
  filter: own,
});

/** the guest's own notes (the owner relation) and its own profile (by bio: it may not point at the guest) */
const guestNotes = { condition: { entity: "notes" }, effect: "filter" as const, filter: { $owner: true } };
const guestProfiles = { condition: { entity: "profiles" }, effect: "filter" as const, filter: { bio: "gus" } };

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
              policies: [
                ownRows(["workspaces", "docs"]),
                { condition: { entity: "profiles" }, effect: "filter", filter: { user_id: "@user.id" } },
                { condition: { entity: "users" }, effect: "filter", filter: { id: "@user.id" } },
                { condition: { entity: "seats" }, effect: "allow", omit: ["tier"] },
              ],
            },
            {
              permission: "data.entity.create",
              // profiles may be created for anyone the member can see: the reference check decides
              policies: [
                ownRows(["workspaces", "docs"]),
                { condition: { entity: { $in: ["profiles", "seats"] } }, effect: "allow" },
              ],
            },
            {
              permission: "data.entity.update",
              policies: [
                ownRows(["workspaces", "docs"]),
                { condition: { entity: "profiles" }, effect: "filter", filter: { user_id: "@user.id" } },
              ],
            },
          ],
        },
        // cannot read users at all: creates its own docs, and notes and profiles naming any user (the probe of
        // the audit: a plain allow on a one-to-one to an entity the caller cannot read)
        guest: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [ownRows(["workspaces", "docs"]), guestNotes, guestProfiles],
            },
            {
              permission: "data.entity.create",
              policies: [ownRows(["docs"]), { condition: { entity: { $in: ["notes", "profiles"] } }, effect: "allow" }],
            },
            { permission: "data.entity.update", policies: [guestNotes, guestProfiles] },
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};

const USERS = { alice: "member", bob: "member", carol: "member", gus: "guest", root: "admin" };
/**
 * users 1..5 in the order above; workspaces: 1 alice's, 2 bob's; profiles: 1 alice's, 2 bob's (carol has none),
 * 3 gus's (linked to no user); notes: 1 gus's, assigned to no one.
 */
const ID = { alice: 1, bob: 2, carol: 3, gus: 4, root: 5 } as const;
const W = { alice: 1, bob: 2 } as const;
const PROFILE = { alice: 1, gus: 3 } as const;
const NOTE = { gus: 1 } as const;
const MISSING = 999;

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(app, {
    users: USERS,
    rows: async (ctx, ids) => {
      await insert(ctx, "workspaces", [
        { slug: "alice-space", name: "A", owner_id: ids.alice },
        { slug: "bob-hidden", name: "B", owner_id: ids.bob },
      ]);
      await insert(ctx, "profiles", [
        { bio: "alice", user_id: ids.alice },
        { bio: "bob", user_id: ids.bob },
        { bio: "gus", user_id: null },
      ]);
      await insert(ctx, "notes", [{ title: "gus's", author_id: ids.gus }]);
    },
  });
});
afterAll(() => b.server.close());

const snapshot = () =>
  Promise.all(
    ["workspaces", "docs", "profiles", "notes"].map((t) => dbRows(b.server, `SELECT * FROM ${t} ORDER BY id`)),
  );

/** Both requests answer byte-identical bodies with the same status, and neither writes anything. */
async function same(
  who: string,
  method: string,
  path: string,
  hidden: unknown,
  missing: unknown,
): Promise<{ status: number; text: string }> {
  const before = await snapshot();
  const h = await b.as(who, method, path, hidden);
  const m = await b.as(who, method, path, missing);
  expect(h.status, `hidden: ${h.text} / missing: ${m.text}`).toBe(m.status);
  expect(h.text).toBe(m.text);
  expect(h.text).not.toContain("bob-hidden");
  expect(await snapshot()).toEqual(before);
  return { status: h.status, text: h.text };
}

describe("unique values held by hidden rows (4.17)", () => {
  it("a create refused by the write check is refused the same way whether its unique value is taken by a hidden row (4.17)", async () => {
    const res = await same(
      "alice",
      "POST",
      "/api/data/workspaces",
      { slug: "bob-hidden", owner_id: ID.bob },
      { slug: "free-slug", owner_id: ID.bob },
    );
    expect(res.status).toBe(403);
  });

  it("a batch with one refused row is refused the same way whether another row's unique value is taken (4.17)", async () => {
    const res = await same(
      "alice",
      "POST",
      "/api/data/workspaces",
      [
        { slug: "bob-hidden", owner_id: ID.alice },
        { slug: "free-2", owner_id: ID.bob },
      ],
      [
        { slug: "free-1", owner_id: ID.alice },
        { slug: "free-2", owner_id: ID.bob },
      ],
    );
    expect(res.status).toBe(403);
  });

  it("an update refused by the write check is refused the same way whether its unique value is taken by a hidden row (4.17)", async () => {
    const path = `/api/data/workspaces/${W.alice}`;
    const res = await same(
      "alice",
      "PATCH",
      path,
      { slug: "bob-hidden", owner_id: ID.bob },
      { slug: "free", owner_id: ID.bob },
    );
    expect(res.status).toBe(403);
    const many = await same(
      "alice",
      "PATCH",
      "/api/data/workspaces",
      { update: { slug: "bob-hidden", owner_id: ID.bob }, where: { id: W.alice } },
      { update: { slug: "free", owner_id: ID.bob }, where: { id: W.alice } },
    );
    expect(many.status).toBe(403);
  });

  it("a create with a reference to a hidden row is refused the same way whether its unique value is taken (4.17)", async () => {
    const res = await same(
      "alice",
      "POST",
      "/api/data/workspaces",
      { slug: "bob-hidden", owner_id: ID.alice, name: "x" },
      { slug: "alice-space", owner_id: ID.alice, name: "x" },
    );
    // both collide: one with a hidden row, one with the caller's own: the same generic conflict
    expect(res.status).toBe(409);
    expect(JSON.parse(res.text)).toEqual({
      error: { code: "conflict", message: "a row with the same slug already exists" },
    });
  });

  it("a collision names only fields the caller reads or sent, not an omitted one of a composite index (4.10, 4.17)", async () => {
    expect((await b.as("alice", "POST", "/api/data/seats", { label: "A1" })).status).toBe(201);
    const again = await b.as("alice", "POST", "/api/data/seats", { label: "A1" });
    expect(again.text).toBe(
      JSON.stringify({ error: { code: "conflict", message: "a row with the same label already exists" } }),
    );
    const named = await b.as("alice", "POST", "/api/data/seats", { label: "A1", tier: "gold" });
    expect(named.body.error.message).toBe("a row with the same label, tier already exists");
    const root = await b.as("root", "POST", "/api/data/seats", { label: "A1" });
    expect(root.body.error.message).toBe("a row with the same label, tier already exists");
  });
});

describe("references to hidden rows (4.17)", () => {
  it("a doc owned by a hidden user answers like one owned by a missing user (4.17)", async () => {
    const res = await same(
      "alice",
      "POST",
      "/api/data/docs",
      { title: "t", owner_id: ID.bob, workspace_id: W.alice },
      { title: "t", owner_id: MISSING, workspace_id: W.alice },
    );
    expect(res.status).toBe(403);
  });

  it("a doc in a hidden workspace answers like one in a missing workspace (4.17)", async () => {
    const res = await same(
      "alice",
      "POST",
      "/api/data/docs",
      { title: "t", owner_id: ID.alice, workspace_id: W.bob },
      { title: "t", owner_id: ID.alice, workspace_id: MISSING },
    );
    expect(res.status).toBe(409);
  });

  it("moving a doc to a hidden owner or workspace answers like moving it to a missing one (4.17)", async () => {
    const created = await b.as("alice", "POST", "/api/data/docs", {
      title: "mine",
      owner_id: ID.alice,
      workspace_id: W.alice,
    });
    expect(created.status, created.text).toBe(201);
    const path = `/api/data/docs/${created.body.data.id}`;
    expect((await same("alice", "PATCH", path, { owner_id: ID.bob }, { owner_id: MISSING })).status).toBe(403);
    expect((await same("alice", "PATCH", path, { workspace_id: W.bob }, { workspace_id: MISSING })).status).toBe(409);
  });

  it("a caller that cannot read users at all gets the same answer for an existing and a missing owner (4.17)", async () => {
    const res = await same(
      "gus",
      "POST",
      "/api/data/docs",
      { title: "t", owner_id: ID.bob },
      { title: "t", owner_id: MISSING },
    );
    expect(res.status).toBe(403);
  });
});

describe("one-to-one references to hidden rows (4.17)", () => {
  it("a profile for a hidden user that has one answers like one for a hidden user without one, and a missing user (4.17)", async () => {
    const withProfile = await same("alice", "POST", "/api/data/profiles", { user_id: ID.bob }, { user_id: ID.carol });
    const missing = await same("alice", "POST", "/api/data/profiles", { user_id: ID.bob }, { user_id: MISSING });
    expect(withProfile).toEqual(missing);
    expect(missing.status).toBe(409);
  });

  it("pointing one's own profile at a hidden user that has one answers like pointing it at one without (4.17)", async () => {
    const path = `/api/data/profiles/${PROFILE.alice}`;
    const withProfile = await same("alice", "PATCH", path, { user_id: ID.bob }, { user_id: ID.carol });
    const missing = await same("alice", "PATCH", path, { user_id: ID.bob }, { user_id: MISSING });
    expect(withProfile).toEqual(missing);
  });
});

describe("what the caller may do still works (4.17)", () => {
  it("a free unique value and readable references are written", async () => {
    const res = await b.as("alice", "POST", "/api/data/workspaces", { slug: "alice-second", owner_id: ID.alice });
    expect(res.status, res.text).toBe(201);
    const doc = await b.as("alice", "POST", "/api/data/docs", {
      title: "ok",
      owner_id: ID.alice,
      workspace_id: res.body.data.id,
    });
    expect(doc.status, doc.text).toBe(201);
    const profile = await b.as("carol", "POST", "/api/data/profiles", { user_id: ID.carol, bio: "c" });
    expect(profile.status, profile.text).toBe(201);
    await b.as("root", "DELETE", `/api/data/docs/${doc.body.data.id}`);
    await b.as("root", "DELETE", `/api/data/workspaces/${res.body.data.id}`);
    await b.as("root", "DELETE", `/api/data/profiles/${profile.body.data.id}`);
  });
});

/**
 * A caller that cannot read the target entity at all (the guest, on users) sees none of its rows: every key it
 * sends answers as a missing row does (4.17), whatever the other checks allow. Only its own user is not hidden
 * from it, and the keys the server sets (the owner, 4.14) are not the caller's to answer for.
 */
describe("references into an entity the caller cannot read at all (4.17)", () => {
  /** A hidden user with rows of its own, one without, and a missing one: one 409, byte for byte, nothing written. */
  async function allMissing(method: string, path: string, body: (user: number) => unknown): Promise<void> {
    const withRows = await same("gus", method, path, body(ID.bob), body(MISSING));
    const without = await same("gus", method, path, body(ID.carol), body(MISSING));
    expect(withRows).toEqual(without);
    expect(withRows.status).toBe(409);
    expect(JSON.parse(withRows.text).error.code).toBe("conflict");
  }

  it("a note assigned to a hidden user answers like one assigned to a missing user (4.17)", async () => {
    await allMissing("POST", "/api/data/notes", (user) => ({ title: "t", assignee_id: user }));
    await allMissing("POST", "/api/data/notes", (user) => [{ title: "fine" }, { title: "t", assignee_id: user }]);
  });

  it("assigning a note to a hidden user answers like assigning it to a missing user (4.17)", async () => {
    await allMissing("PATCH", `/api/data/notes/${NOTE.gus}`, (user) => ({ assignee_id: user }));
    await allMissing("PATCH", "/api/data/notes", (user) => ({
      update: { assignee_id: user },
      where: { id: NOTE.gus },
    }));
  });

  it("a profile for a hidden user with a profile, one without and a missing user answer alike (4.17)", async () => {
    await allMissing("POST", "/api/data/profiles", (user) => ({ bio: "x", user_id: user }));
    await allMissing("POST", "/api/data/profiles", (user) => ({ bio: "gus", user_id: user }));
  });

  it("pointing a profile at a hidden user with a profile, one without or a missing user answers alike (4.17)", async () => {
    await allMissing("PATCH", `/api/data/profiles/${PROFILE.gus}`, (user) => ({ user_id: user }));
    await allMissing("PATCH", "/api/data/profiles", (user) => ({
      update: { user_id: user },
      where: { id: PROFILE.gus },
    }));
  });

  it("the owner the server sets, the caller's own user and a trusted caller's keys are still written (4.14)", async () => {
    const own = await b.as("gus", "POST", "/api/data/notes", { title: "mine" });
    expect(own.status, own.text).toBe(201);
    expect(own.body.data).toMatchObject({ title: "mine", author_id: ID.gus, assignee_id: null });
    const self = await b.as("gus", "PATCH", `/api/data/notes/${own.body.data.id}`, {
      author_id: ID.gus,
      assignee_id: ID.gus,
    });
    expect(self.status, self.text).toBe(200);
    expect(self.body.data).toMatchObject({ author_id: ID.gus, assignee_id: ID.gus });
    const doc = await b.as("gus", "POST", "/api/data/docs", { title: "d", owner_id: ID.gus });
    expect(doc.status, doc.text).toBe(201);
    const profile = await b.as("gus", "PATCH", `/api/data/profiles/${PROFILE.gus}`, { user_id: ID.gus });
    expect(profile.status, profile.text).toBe(200);
    const root = await b.as("root", "POST", "/api/data/notes", { title: "r", author_id: ID.gus, assignee_id: ID.bob });
    expect(root.status, root.text).toBe(201);
    expect(root.body.data).toMatchObject({ author_id: ID.gus, assignee_id: ID.bob });
    await b.as("root", "PATCH", `/api/data/profiles/${PROFILE.gus}`, { user_id: null });
    for (const note of [own, root]) await b.as("root", "DELETE", `/api/data/notes/${note.body.data.id}`);
    await b.as("root", "DELETE", `/api/data/docs/${doc.body.data.id}`);
  });
});
