/**
 * The change feed (§8) over HTTP: `GET /api/data/:entity/changes` streams the creates, updates and deletes of
 * the rows the subscriber may read, decided when each event is sent (a row entering its filter is a create,
 * one leaving it a delete), within its tenant (§6), shaped to its fields, resumable from Last-Event-ID.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { type FeedEvent, type FeedStream, openFeed } from "../helpers/sse.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

const config = () => tenancyConfig({ feed: { poll_ms: 50 } });

describe("change feed (8.2)", () => {
  let server: TestServer;
  const tokens: Record<string, Record<string, string>> = {};
  const as = (who: string) => tokens[who]!;

  const create = async (who: string, row: Row) => {
    const res = await server.request("POST", "/api/data/notes", row, as(who));
    expect(res.status, res.text).toBe(201);
    return res.body.data.id as number;
  };
  const update = async (who: string, id: number, row: Row) => {
    const res = await server.request("PATCH", `/api/data/notes/${id}`, row, as(who));
    expect(res.status, res.text).toBe(200);
  };

  beforeAll(async () => {
    server = await startServer(config(), { options: { seed: seedTenants } });
    for (const who of ["alice", "bob", "carol"]) {
      const email = { alice: "alice@a.test", bob: "bob@a.test", carol: "carol@b.test" }[who]!;
      tokens[who] = bearer(await login(server, email, PASSWORD));
    }
    tokens.root = bearer(await login(server, "root@test.com", PASSWORD));
  });
  afterAll(() => server?.close());

  it("streams the creates, updates and deletes of the caller's tenant, never another tenant's (8.2, 6)", async () => {
    const feed = await openFeed(server.url, "/api/data/notes/changes", as("alice"));
    expect(feed.status).toBe(200);
    await create("carol", { title: "carol's secret" });
    const id = await create("bob", { title: "bob's new" });
    await update("bob", id, { title: "bob's renamed" });
    const removed = await server.request("DELETE", `/api/data/notes/${id}`, undefined, as("bob"));
    expect(removed.status).toBe(200);
    await feed.until((e) => e.event === "delete" && e.data.id === id, "the delete");
    feed.close();
    expect(feed.changes().map((e) => [e.event, e.data.record.title])).toEqual([
      ["create", "bob's new"],
      ["update", "bob's renamed"],
      ["delete", "bob's renamed"],
    ]);
    expect(feed.changes()[0]!.data).toMatchObject({ action: "create", entity: "notes", id });
    expect(JSON.stringify(feed.events)).not.toContain("carol's secret");
  });

  it("event ids are opaque: they do not count the writes in between, other tenants' included (8.2, 6)", async () => {
    const feed = await openFeed(server.url, "/api/data/notes/changes", as("alice"));
    const first = await create("alice", { title: "opaque-1" });
    for (let i = 0; i < 3; i++) await create("carol", { title: `carol's ${i}` });
    const second = await create("alice", { title: "opaque-2" });
    await feed.until((e) => e.data.id === second);
    feed.close();
    const ids = feed.changes().map((e) => e.id!);
    expect(feed.changes().map((e) => e.data.id)).toEqual([first, second]);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{48}$/);
    // an id altered by one character opens nothing: the client is told to read the rows again
    const altered = ids[0]!.slice(0, 20) + (ids[0]![20] === "A" ? "B" : "A") + ids[0]!.slice(21);
    const resumed = await openFeed(server.url, "/api/data/notes/changes", { ...as("alice"), "last-event-id": altered });
    const reset = await resumed.until((e) => e.event === "reset");
    resumed.close();
    expect(reset.data.reason).toMatch(/not an event of this database/);
    const numeric = await openFeed(server.url, "/api/data/notes/changes", { ...as("alice"), "last-event-id": "3" });
    expect(numeric.status).toBe(400);
  });

  it("a row entering the subscriber's filter is a create, one leaving it a delete (8.2)", async () => {
    // a publishable key of account A acts as the default role: it reads the account's public notes
    const key = await server.request(
      "POST",
      "/api/system/keys",
      { name: "feed", kind: "publishable", tenant: 1 },
      as("root"),
    );
    expect(key.status, key.text).toBe(201);
    const anonymous = await openFeed(server.url, "/api/data/notes/changes", { apikey: key.body.data.key });
    const id = await create("alice", { title: "draft" });
    await update("alice", id, { public: true });
    await update("alice", id, { title: "published" });
    await update("alice", id, { public: false });
    await anonymous.until((e) => e.event === "delete" && e.data.id === id, "the leave");
    anonymous.close();
    expect(anonymous.changes().map((e) => [e.event, e.data.record.title, e.data.record.public])).toEqual([
      ["create", "draft", true],
      ["update", "published", true],
      ["delete", "published", true],
    ]);
  });

  it("narrows with where, checked on each event as the caller's own where is (8.2)", async () => {
    const where = encodeURIComponent(JSON.stringify({ title: { $like: "feed-*" } }));
    const feed = await openFeed(server.url, `/api/data/notes/changes?where=${where}`, as("alice"));
    await create("alice", { title: "other" });
    const id = await create("alice", { title: "feed-1" });
    await feed.until((e) => e.data.id === id);
    feed.close();
    expect(feed.changes().map((e) => e.data.record.title)).toEqual(["feed-1"]);
  });

  it("refuses what a read refuses: no permission 403, unknown entity 404, bad where or id 400 (8.2)", async () => {
    const anonymousUsers = await openFeed(server.url, "/api/data/users/changes");
    expect(anonymousUsers.status).toBe(403);
    expect((await openFeed(server.url, "/api/data/nope/changes", as("alice"))).status).toBe(404);
    const hidden = encodeURIComponent(JSON.stringify({ password_hash: "x" }));
    expect((await openFeed(server.url, `/api/data/users/changes?where=${hidden}`, as("root"))).status).toBe(400);
    const bad = await openFeed(server.url, "/api/data/notes/changes", { ...as("alice"), "last-event-id": "x" });
    expect(bad.status).toBe(400);
    expect((await openFeed(server.url, "/api/data/notes/changes?sort=id", as("alice"))).status).toBe(400);
    const forged = await openFeed(server.url, "/api/data/notes/changes", bearer("not-a-token"));
    expect(forged.status).toBe(401);
  });

  it("resumes after Last-Event-ID without a gap or a duplicate (8.2)", async () => {
    const first = await openFeed(server.url, "/api/data/notes/changes", as("alice"));
    const a = await create("alice", { title: "resume-a" });
    const seen = await first.until((e) => e.data.id === a);
    first.close();
    const missed = [await create("alice", { title: "resume-b" }), await create("bob", { title: "resume-c" })];
    const again = await openFeed(server.url, "/api/data/notes/changes", { ...as("alice"), "last-event-id": seen.id! });
    const d = await create("alice", { title: "resume-d" });
    await again.until((e) => e.data.id === d);
    again.close();
    expect(again.changes().map((e) => e.data.id)).toEqual([...missed, d]);
    const query = await openFeed(server.url, `/api/data/notes/changes?last_event_id=${seen.id}`, as("alice"));
    await query.until((e) => e.data.id === d);
    query.close();
    expect(query.changes().map((e) => e.data.id)).toEqual([...missed, d]);
  });

  it("an update to fields the subscriber cannot see is no event, live or resumed, though updated_at changed; shown fields only (8.2, 4.8)", async () => {
    // root reads users, but never their hidden password_hash and token_version
    const users = server.app.module.auth.users;
    const live = await openFeed(server.url, "/api/data/users/changes", as("root"));
    const created = await server.app.module.auth.createUser({ email: "feed-user@a.test", password: PASSWORD });
    const first = await live.until((e) => e.data.id === created.id);
    // the hash and token version change, and updated_at with them: nothing the subscriber reads
    await users.setPassword("feed-user@a.test", `${PASSWORD}-2`);
    await users.setRole("feed-user@a.test", "reader");
    const isRoleChange = (e: FeedEvent) => e.event === "update" && e.data.record.role === "reader";
    const changed = await live.until(isRoleChange, "the role change");
    live.close();
    const mine = (feed: FeedStream) => feed.changes().filter((e) => e.data.id === created.id);
    expect(mine(live).map((e) => [e.event, e.data.record.role])).toEqual([
      ["create", null],
      ["update", "reader"],
    ]);
    // the next update it is sent carries updated_at as the row has it now
    const now = await server.request("GET", `/api/data/users/${created.id}`, undefined, as("root"));
    expect(changed.data.record.updated_at).toBe(now.body.data.updated_at);
    // resumed from the create, the missed events are decided as they were live
    const resumed = await openFeed(server.url, "/api/data/users/changes", {
      ...as("root"),
      "last-event-id": first.id!,
    });
    await resumed.until(isRoleChange, "the role change");
    resumed.close();
    expect(mine(resumed).map((e) => [e.event, e.data.record.role])).toEqual([["update", "reader"]]);
    for (const e of [...mine(live), ...mine(resumed)]) {
      expect(e.data.record).not.toHaveProperty("password_hash");
      expect(e.data.record).not.toHaveProperty("token_version");
    }
    expect(JSON.stringify([live.events, resumed.events])).not.toMatch(/argon2/);
  });

  it("a where on updated_at is 400: it moves on every write, hidden ones too, so it would tell of them (8.2)", async () => {
    for (const where of [{ updated_at: { $gt: "2026-01-01T00:00:00Z" } }, { $or: [{ id: 1 }, { updated_at: null }] }]) {
      const path = `/api/data/users/changes?where=${encodeURIComponent(JSON.stringify(where))}`;
      const res = await server.request("GET", path, undefined, as("root"));
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.message).toContain("cannot filter on updated_at");
    }
    const createdAt = encodeURIComponent(JSON.stringify({ created_at: { $gt: "2026-01-01T00:00:00Z" } }));
    const feed = await openFeed(server.url, `/api/data/users/changes?where=${createdAt}`, as("root"));
    feed.close();
  });

  it("is counted: open streams, events sent, streams ended by reason (7.5)", async () => {
    const metric = async (name: string) => {
      const text = (await server.request("GET", "/api/system/metrics", undefined, as("root"))).text;
      const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return Number(line?.split(" ").at(-1) ?? 0);
    };
    const feed = await openFeed(server.url, "/api/data/notes/changes", as("bob"));
    expect(await metric("citadel_feed_subscribers")).toBeGreaterThanOrEqual(1);
    const sent = await metric("citadel_feed_events_total");
    const id = await create("bob", { title: "counted" });
    await feed.until((e) => e.data.id === id);
    expect(await metric("citadel_feed_events_total")).toBeGreaterThan(sent);
    const closed = await metric('citadel_feed_disconnects_total{reason="closed"}');
    feed.close();
    await expect.poll(() => metric('citadel_feed_disconnects_total{reason="closed"}')).toBe(closed + 1);
  });
});
