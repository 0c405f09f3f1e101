/**
 * The change feed (§8) against the red team's attacks, over HTTP on real servers: a bulk write or a caller's huge
 * where must not end other subscribers' streams, concurrent opens must not pass the per-caller limit, a stream
 * must not keep a user's old claims, a filter that follows relations must not replay old images, ready carries a
 * resumable id, publishable-key streams count per client address, queues are bounded in bytes, and pruning keeps
 * a prefix of the outbox.
 */
import type { CitadelConfig } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { type FeedStream, openFeed } from "../helpers/sse.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

type FeedConfig = NonNullable<CitadelConfig["feed"]>;
const NOTES = "/api/data/notes/changes";
const COMMENTS = "/api/data/comments/changes";
const HOUR = 3_600_000;
const MAILER = "mailer@a.test";
const COMMENTER = "commenter@a.test";

/** The tenancy app, plus a role whose filter binds `@user.email` and one whose filter follows a relation. */
function config(feed: FeedConfig = {}): CitadelConfig {
  const base = tenancyConfig({ feed: { poll_ms: 50, recheck_ms: 100, ...feed }, server: { trust_proxy: true } });
  const read = (entity: string, filter: Row) => ({
    permission: "data.entity.read",
    policies: [{ condition: { entity }, effect: "filter" as const, filter }],
  });
  return {
    ...base,
    auth: {
      ...base.auth,
      roles: {
        ...base.auth!.roles,
        mailer: { permissions: [read("notes", { slug: "@user.email" })] },
        commenter: { permissions: [read("comments", { "note.public": true })] },
      },
    },
  };
}

/** seedTenants, the mailer and commenter of account A, and the note the mailer's email names. */
async function seed(ctx: Parameters<typeof seedTenants>[0]): Promise<void> {
  await seedTenants(ctx);
  const { app } = ctx;
  const accounts = (await app.db
    .selectFrom("accounts" as never)
    .select(["id", "slug"] as never)
    .execute()) as Row[];
  const A = accounts.find((a) => a.slug === "a")!.id as number;
  for (const [email, role] of [
    [MAILER, "mailer"],
    [COMMENTER, "commenter"],
  ] as const)
    await app.module.auth.createUser({ email, password: PASSWORD, role, account_id: A });
  await app.module.data.create("notes", { title: "the mailer's", slug: MAILER, account_id: A });
}

async function session(server: TestServer, email: string) {
  const res = await server.request("POST", "/api/auth/password/login", { email, password: PASSWORD });
  expect(res.status, res.text).toBe(200);
  return { auth: bearer(res.body.token as string), id: res.body.user.id as number };
}

async function write(server: TestServer, method: string, path: string, auth: Record<string, string>, body?: unknown) {
  const res = await server.request(method, path, body, auth);
  expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
  return res.body.data;
}

const createNotes = async (server: TestServer, auth: Record<string, string>, rows: Row[]) =>
  ((await write(server, "POST", "/api/data/notes", auth, rows)) as Row[]).map((r) => r.id as number);

/** Resolves whether the stream ended within `ms` (a generous bound, never a measure). */
const endsWithin = (feed: FeedStream, ms: number) =>
  Promise.race([feed.ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

/** The `ready` event's `id:` line, read from the raw stream (the SSE helper leaves `ready` out of its events). */
async function readyId(url: string, headers: Record<string, string>): Promise<string | undefined> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  expect(res.status).toBe(200);
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      const block = text.split("\n\n").find((b) => b.split("\n").includes("event: ready"));
      if (block)
        return block
          .split("\n")
          .find((l) => l.startsWith("id:"))
          ?.replace(/^id: ?/, "");
    }
  } finally {
    abort.abort();
  }
  return undefined;
}

describe("change feed attacks (8.2, 8.3)", () => {
  let server: TestServer;
  const as: Record<string, { auth: Record<string, string>; id: number }> = {};

  beforeAll(async () => {
    server = await startServer(config(), { options: { seed } });
    const people = { alice: "alice@a.test", bob: "bob@a.test", adam: "adam@a.test", carol: "carol@b.test" };
    for (const [who, email] of Object.entries(people)) as[who] = await session(server, email);
    as.root = await session(server, "root@test.com");
  });
  afterAll(() => server?.close());

  it("a bulk update of 260 rows reaches every subscriber, in every tenant, and ends no stream (8.2)", async () => {
    const alice = await openFeed(server.url, NOTES, as.alice!.auth);
    const carol = await openFeed(server.url, NOTES, as.carol!.auth);
    const ids = await createNotes(
      server,
      as.alice!.auth,
      Array.from({ length: 260 }, () => ({ title: "bulk" })),
    );
    const updated = await write(server, "PATCH", "/api/data/notes", as.alice!.auth, {
      update: { title: "bulk, edited" },
      where: { title: "bulk" },
    });
    expect(updated).toHaveLength(260);
    await alice.until((e) => e.event === "update" && e.data.id === ids.at(-1), "the last update");
    const [marker] = await createNotes(server, as.carol!.auth, [{ title: "after the bulk" }]);
    await carol.until((e) => e.data.id === marker, "carol's marker");
    alice.close();
    carol.close();
    const updates = alice.changes().filter((e) => e.event === "update");
    expect(updates.map((e) => e.data.id)).toEqual(ids);
    expect(updates.every((e) => e.data.record.title === "bulk, edited")).toBe(true);
    for (const feed of [alice, carol]) expect(feed.events.some((e) => e.event === "close")).toBe(false);
  });

  it("streams whose where binds 5,000 values each do not end another tenant's stream, nor their own (8.2, 6)", async () => {
    // 5 lists of 1,000 values: single digits keep the request line within Node's 16 kB of headers
    const where = (stream: number) => {
      // each stream's lists in another order: distinct wheres, so none shares another's filter
      const digits = Array.from({ length: 1000 }, (_, i) => (i + stream) % 10);
      return {
        $or: [
          ...Array.from({ length: 4 }, () => ({ id: { $in: digits } })),
          { author_id: { $in: digits.map(() => as.alice!.id) } },
        ],
      };
    };
    // three users of account A, five streams each: 75,000 values, past SQLite's and PostgreSQL's bind limits
    const big: FeedStream[] = [];
    for (const who of ["alice", "bob", "adam"])
      for (let i = 0; i < 5; i++) {
        const feed = await openFeed(
          server.url,
          `${NOTES}?where=${encodeURIComponent(JSON.stringify(where(big.length))).replaceAll("%2C", ",")}`,
          as[who]!.auth,
        );
        expect(feed.status, JSON.stringify(feed.body)).toBe(200);
        big.push(feed);
      }
    const victim = await openFeed(server.url, NOTES, as.carol!.auth);
    const [theirs] = await createNotes(server, as.carol!.auth, [{ title: "the victim's" }]);
    const [ours] = await createNotes(server, as.alice!.auth, [{ title: "by alice" }]);
    await victim.until((e) => e.data.id === theirs, "the victim's event");
    for (const feed of big) await feed.until((e) => e.data.id === ours, "alice's note on a big-where stream");
    for (const feed of [victim, ...big]) feed.close();
    for (const feed of [victim, ...big]) expect(feed.events.some((e) => e.event === "close")).toBe(false);
  });

  it("30 concurrent opens by one user: exactly max_subscribers_per_caller (5) are 200, the rest 429 (8.2)", async () => {
    // resuming (as reconnecting clients do) puts more awaits between the limit's check and the stream's start
    const [head] = await server.rows(`SELECT max("seq") AS "seq" FROM citadel_outbox`);
    const resume = { ...as.bob!.auth, "last-event-id": await server.app.feed!.ids.seal(Number(head!.seq)) };
    const feeds = await Promise.all(Array.from({ length: 30 }, () => openFeed(server.url, NOTES, resume)));
    for (const feed of feeds) feed.close();
    const statuses = feeds.map((f) => f.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25);
  });

  it("a user whose email changes is disconnected within recheck_ms: its filter was bound with the old one (8.3, 4)", async () => {
    const mailer = await session(server, MAILER);
    const feed = await openFeed(server.url, NOTES, mailer.auth);
    const [note] = (await server.rows(`SELECT "id" FROM notes WHERE "slug" = ?`, MAILER)) as Row[];
    await write(server, "PATCH", `/api/data/notes/${note!.id}`, as.adam!.auth, { title: "seen by the mailer" });
    await feed.until((e) => e.data.id === note!.id, "the mailer's note");
    await write(server, "PATCH", `/api/data/users/${mailer.id}`, as.root!.auth, { email: "renamed@a.test" });
    // recheck_ms is 100: 5 s only tells it from a stream that is never rechecked
    const ended = await endsWithin(feed, 5000);
    feed.close();
    expect(ended, JSON.stringify(feed.events)).toBe(true);
    expect(feed.events.at(-1)?.event).toBe("close");
  });

  it("a resume whose filter follows relations is a reset, never a replay of text from while the post was private (8.2, 4)", async () => {
    const commenter = await session(server, COMMENTER);
    const adam = as.adam!.auth;
    const [pub] = await server.rows(`SELECT "id" FROM notes WHERE "title" = ?`, "alice's note");
    const [hidden] = await server.rows(`SELECT "id" FROM notes WHERE "title" = ?`, "bob's note");
    const first = await openFeed(server.url, COMMENTS, commenter.auth);
    const seen = await write(server, "POST", "/api/data/comments", adam, { body: "on the public", note_id: pub!.id });
    const last = await first.until((e) => e.data.id === seen.id, "the first comment");
    first.close();
    const draft = await write(server, "POST", "/api/data/comments", adam, {
      body: "draft while private",
      note_id: hidden!.id,
    });
    await write(server, "PATCH", `/api/data/comments/${draft.id}`, adam, { body: "final" });
    await write(server, "PATCH", `/api/data/notes/${hidden!.id}`, adam, { public: true });
    const resumed = await openFeed(server.url, COMMENTS, { ...commenter.auth, "last-event-id": last.id! });
    const marker = await write(server, "POST", "/api/data/comments", adam, { body: "marker", note_id: pub!.id });
    await resumed.until((e) => e.data.id === marker.id, "the marker");
    resumed.close();
    expect(resumed.events[0]).toMatchObject({ event: "reset", data: { reason: expect.stringMatching(/relation/) } });
    expect(JSON.stringify(resumed.events)).not.toContain("draft while private");
    expect(resumed.changes().map((e) => [e.event, e.data.id])).toEqual([["create", marker.id]]);
  });

  it("ready carries an id: a client that saw no event resumes from it and gets what was written meanwhile (8.2)", async () => {
    const id = await readyId(server.url + NOTES, as.alice!.auth);
    expect(id).toBeTruthy();
    const [missed] = await createNotes(server, as.alice!.auth, [{ title: "while disconnected" }]);
    const feed = await openFeed(server.url, NOTES, { ...as.alice!.auth, "last-event-id": id! });
    await feed.until((e) => e.data.id === missed, "the note written while disconnected");
    feed.close();
    expect(feed.events.map((e) => [e.event, e.data.id])).toEqual([["create", missed]]);
  });

  it("a publishable key's streams count per client address, behind a trusted proxy (8.2, 5)", async () => {
    const [account] = await server.rows(`SELECT "id" FROM accounts WHERE "slug" = ?`, "a");
    const pk = await createKey(server, as.root!.auth, { name: "web A", kind: "publishable", tenant: account!.id });
    const from = (ip: string) => ({ apikey: pk.key, "x-forwarded-for": ip });
    const feeds: FeedStream[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        feeds.push(await openFeed(server.url, NOTES, from("203.0.113.1")));
        expect(feeds.at(-1)!.status, JSON.stringify(feeds.at(-1)!.body)).toBe(200);
      }
      const sixth = await openFeed(server.url, NOTES, from("203.0.113.1"));
      feeds.push(sixth);
      expect(sixth.status).toBe(429);
      const other = await openFeed(server.url, NOTES, from("203.0.113.2"));
      feeds.push(other);
      expect(other.status, JSON.stringify(other.body)).toBe(200);
    } finally {
      for (const feed of feeds) feed.close();
    }
  });
});

describe("queues are bounded in bytes (8.2)", () => {
  let server: TestServer;
  let alice: Record<string, string>;
  beforeAll(async () => {
    server = await startServer(config({ buffer: 100_000, buffer_bytes: 4096 } as FeedConfig), { options: { seed } });
    alice = bearer(await login(server, "alice@a.test", PASSWORD));
  });
  afterAll(() => server?.close());

  it("a single message larger than buffer_bytes still reaches a stream whose queue is empty (8.2)", async () => {
    const feed = await openFeed(server.url, NOTES, alice);
    const [id] = await createNotes(server, alice, [{ title: "x".repeat(6000) }]);
    // received, so no longer queued: the next note finds the queue empty again. Written at once instead, both
    // could come from one poll of the outbox, the second past buffer_bytes behind the first (the next test)
    await feed.until((e) => e.data.id === id, "the large note");
    const [next] = await createNotes(server, alice, [{ title: "small" }]);
    await feed.until((e) => e.data.id === next, "the note after the large one");
    feed.close();
    expect(feed.changes().map((e) => [e.data.id, e.data.record.title.length])).toEqual([
      [id, 6000],
      [next, 5],
    ]);
  });

  it("20 rows of 2,000 characters in one write drop a stream whose buffer_bytes is 4096 (buffer is far larger) (8.2)", async () => {
    const feed = await openFeed(server.url, NOTES, alice);
    const slowBefore = server.app.feed!.counts().ended.slow ?? 0;
    await createNotes(
      server,
      alice,
      Array.from({ length: 20 }, (_, i) => ({ title: `${i}`.padEnd(2000, "y") })),
    );
    expect(await endsWithin(feed, 15_000)).toBe(true);
    feed.close();
    expect(feed.changes().length).toBeLessThan(20);
    expect(server.app.feed!.counts().ended.slow).toBe(slowBefore + 1);
  });
});

describe("pruning removes a prefix of the outbox (8.2)", () => {
  let server: TestServer;
  let alice: Record<string, string>;
  beforeAll(async () => {
    server = await startServer(config(), { options: { seed } });
    alice = bearer(await login(server, "alice@a.test", PASSWORD));
  });
  afterAll(() => server?.close());

  it("an event stamped by a clock ahead is pruned with those before it; resuming from an older id is a reset (8.2)", async () => {
    const first = await openFeed(server.url, NOTES, alice);
    const ids = await createNotes(server, alice, [{ title: "p1" }]);
    ids.push(...(await createNotes(server, alice, [{ title: "p2" }])));
    ids.push(...(await createNotes(server, alice, [{ title: "p3" }])));
    await first.until((e) => e.data.id === ids[2]);
    first.close();
    const [a, b] = first.changes().map((e) => e.id!);
    // p2 was written by a server whose clock runs two days ahead
    const skewed = await server.app.feed!.ids.open(b!);
    await server.rows(
      `UPDATE citadel_outbox SET "at" = ? WHERE "seq" = ?`,
      new Date(Date.now() + 48 * HOUR).toISOString(),
      skewed,
    );
    await server.app.feed!.prune(new Date(Date.now() + 25 * HOUR));
    expect(await server.rows(`SELECT "seq" FROM citadel_outbox`)).toEqual([]);
    const [kept] = await createNotes(server, alice, [{ title: "p4" }]);
    const stale = await openFeed(server.url, NOTES, { ...alice, "last-event-id": a! });
    await stale.until((e) => e.data.id === kept);
    stale.close();
    expect(stale.events.map((e) => e.event)).toEqual(["reset", "create"]);
  });
});
