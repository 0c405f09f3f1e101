/**
 * The change feed's life over time (§8.3, §11.4), on real servers: several servers on one database deliver the
 * same events, a restart loses none, a revoked or expired credential is cut off, streams are limited per caller
 * and per server, a slow subscriber is dropped and resumes, an id the outbox no longer holds is a reset, an idle
 * stream is kept alive, and a client that leaves frees its slot.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CitadelConfig } from "citadel";
import { serve as serveOnBun } from "citadel/adapter/bun";
import { type ServerHandle, serve as serveOnNode } from "citadel/adapter/node";
import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../helpers/auth.js";
import { type Row, RUNTIME, startServer, type TestServer } from "../helpers/server.js";
import { type FeedStream, openFeed } from "../helpers/sse.js";
import { PASSWORD, PEOPLE, type Person, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

type FeedConfig = NonNullable<CitadelConfig["feed"]>;
const config = (feed: FeedConfig = {}, jwt: Record<string, unknown> = {}): CitadelConfig => {
  const base = tenancyConfig({ feed: { poll_ms: 50, ...feed } });
  return { ...base, auth: { ...base.auth, jwt: { ...base.auth?.jwt, ...jwt } } };
};
const NOTES = "/api/data/notes/changes";
const HOUR = 3_600_000;

/**
 * Another server on `first`'s database (startServer gives each server a database of its own). On SQLite it is
 * a second app on the same file in this process: it only reads here, so no writer waits on the file's lock.
 */
async function alongside(first: TestServer, cfg: CitadelConfig): Promise<ServerHandle> {
  const serve = RUNTIME === "bun" ? serveOnBun : serveOnNode;
  const handle = serve({ connection: first.connection, config: cfg, port: 0, hostname: "127.0.0.1", quiet: true });
  await handle.ready;
  return handle;
}

/** A stream opened on a raw socket that is never read after the response's first bytes. */
async function stalledReader(url: string, path: string, headers: Record<string, string>): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve) => socket.once("connect", resolve));
  const lines = Object.entries({ host: hostname, accept: "text/event-stream", ...headers }).map(
    ([k, v]) => `${k}: ${v}`,
  );
  socket.write(`GET ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`);
  await new Promise((resolve) => socket.once("data", resolve));
  socket.pause();
  return socket;
}

/** Wait until `check` holds (a generous bound, never a measure). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within 15 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Log `who` in on `server`: its Authorization header and user id. */
async function session(server: TestServer, who: Person) {
  const res = await server.request("POST", "/api/auth/password/login", {
    email: PEOPLE[who].email,
    password: PASSWORD,
  });
  expect(res.status, res.text).toBe(200);
  return { auth: bearer(res.body.token as string), id: res.body.user.id as number };
}

async function create(server: TestServer, auth: Record<string, string>, row: Row | Row[]) {
  const res = await server.request("POST", "/api/data/notes", row, auth);
  expect(res.status, res.text).toBe(201);
  return Array.isArray(row) ? (res.body.data as Row[]).map((r) => r.id as number) : [res.body.data.id as number];
}

const ids = (feed: FeedStream) => feed.changes().map((e) => e.data.id as number);
const lastId = (feed: FeedStream) => feed.changes().at(-1)!.id!;

/** The outbox sequence numbers behind event ids, as `app` opens them (ids are sealed with auth on, 8.2). */
const seqs = (app: TestServer["app"], events: { id?: string }[]) =>
  Promise.all(events.map(async (e) => (e.id === undefined ? undefined : app.feed!.ids.open(e.id))));
/** What a stream received, with sequence numbers for ids: equal across servers that sent the same events. */
const sequence = async (app: TestServer["app"], feed: FeedStream) => {
  const numbers = await seqs(app, feed.changes());
  return feed.changes().map((e, i) => [numbers[i], e.event, e.data.id, e.data.at]);
};

describe("several servers on one database deliver the same events (8.3, 11.4)", () => {
  let first: TestServer;
  const others: ServerHandle[] = [];

  beforeAll(async () => {
    first = await startServer(config(), { options: { seed: seedTenants } });
    for (let i = 0; i < 2; i++) others.push(await alongside(first, config()));
  });
  afterAll(async () => {
    await Promise.all(others.map((h) => h.close()));
    await first?.close();
  });

  it("subscribers on servers 2 and 3 receive what is written through server 1: same ids, same order (8.3, 11.4)", async () => {
    const alice = await session(first, "alice");
    const feeds = [await openFeed(first.url, NOTES, alice.auth)];
    for (const h of others) feeds.push(await openFeed(h.url, NOTES, alice.auth));
    const [a] = await create(first, alice.auth, { title: "one" });
    const many = await create(first, alice.auth, [{ title: "two" }, { title: "three" }, { title: "four" }]);
    expect((await first.request("PATCH", `/api/data/notes/${a}`, { title: "one, edited" }, alice.auth)).status).toBe(
      200,
    );
    expect((await first.request("DELETE", `/api/data/notes/${many[1]}`, undefined, alice.auth)).status).toBe(200);
    for (const feed of feeds) await feed.until((e) => e.event === "delete" && e.data.id === many[1], "the delete");
    for (const feed of feeds) feed.close();
    expect(feeds[0]!.changes().map((e) => [e.event, e.data.id])).toEqual([
      ["create", a],
      ...many.map((id) => ["create", id]),
      ["update", a],
      ["delete", many[1]],
    ]);
    const expected = await sequence(first.app, feeds[0]!);
    expect(expected.every(([seq]) => typeof seq === "number")).toBe(true);
    for (const feed of feeds.slice(1)) expect(await sequence(first.app, feed)).toEqual(expected);
  });

  it("an event id one server sent resumes on another (8.2, 11.4)", async () => {
    const carol = await session(first, "carol");
    const feed = await openFeed(others[0]!.url, NOTES, carol.auth);
    const [a] = await create(first, carol.auth, { title: "carol one" });
    const seen = await feed.until((e) => e.data.id === a);
    feed.close();
    const missed = await create(first, carol.auth, [{ title: "carol two" }, { title: "carol three" }]);
    const elsewhere = await openFeed(others[1]!.url, NOTES, { ...carol.auth, "last-event-id": seen.id! });
    await elsewhere.until((e) => e.data.id === missed[1]);
    elsewhere.close();
    expect(elsewhere.events.map((e) => [e.event, e.data.id])).toEqual(missed.map((id) => ["create", id]));
  });

  it("a logout through server 1 disconnects the user's stream on server 2 (8.3, 11.4)", async () => {
    const bob = await session(first, "bob");
    const feed = await openFeed(others[0]!.url, NOTES, bob.auth);
    expect((await first.request("POST", "/api/auth/logout", undefined, bob.auth)).status).toBe(200);
    await feed.ended;
    expect(feed.events.at(-1)).toMatchObject({
      event: "close",
      data: { reason: expect.stringMatching(/no longer valid/) },
    });
  });
});

describe("the feed survives a server restart (8.2, 8.3)", () => {
  const dir = mkdtempSync(join(tmpdir(), "citadel-feed-restart-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a client reconnecting with Last-Event-ID to the restarted server gets exactly what it missed (8.2, 8.3)", async () => {
    const before = await startServer(config(), { dir, options: { seed: seedTenants } });
    const alice = await session(before, "alice");
    const feed = await openFeed(before.url, NOTES, alice.auth);
    const seen = await create(before, alice.auth, [{ title: "r1" }, { title: "r2" }]);
    await feed.until((e) => e.data.id === seen[1]);
    await before.close();
    await feed.ended;
    expect(ids(feed)).toEqual(seen);
    const after = await startServer(config(), { dir });
    try {
      const missed = await create(after, alice.auth, [{ title: "r3" }, { title: "r4" }]);
      missed.push(...(await create(after, alice.auth, { title: "r5" })));
      const again = await openFeed(after.url, NOTES, { ...alice.auth, "last-event-id": lastId(feed) });
      const [next] = await create(after, alice.auth, { title: "r6" });
      await again.until((e) => e.data.id === next);
      again.close();
      expect(ids(again)).toEqual([...missed, next]);
      const numbers = (await seqs(after.app, [...feed.changes(), ...again.changes()])) as number[];
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    } finally {
      await after.close();
    }
  });
});

describe("a revoked or expired credential is disconnected (8.3)", () => {
  let server: TestServer;
  let root: Record<string, string>;
  beforeAll(async () => {
    server = await startServer(config({ recheck_ms: 100 }), { options: { seed: seedTenants } });
    root = (await session(server, "root")).auth;
  });
  afterAll(() => server?.close());

  /**
   * Revoke, and see the stream closed, with nothing after the close. It ends at the next recheck (100 ms here);
   * no clock is read: the test's timeout bounds the wait, whatever the machine's speed.
   */
  async function cutOff(feed: FeedStream, revoke: () => Promise<void>, write: () => Promise<number>) {
    const before = await write();
    await feed.until((e) => e.data.id === before);
    await revoke();
    await feed.ended;
    expect(feed.events.at(-1)).toEqual({
      event: "close",
      id: undefined,
      data: { reason: "the token or key is no longer valid" },
    });
    expect(server.app.feed!.size).toBe(0);
  }

  it("a logout revokes the user's tokens: its stream is closed (8.3, 3)", async () => {
    const alice = await session(server, "alice");
    const feed = await openFeed(server.url, NOTES, alice.auth);
    const bob = await session(server, "bob");
    await cutOff(
      feed,
      async () => expect((await server.request("POST", "/api/auth/logout", undefined, alice.auth)).status).toBe(200),
      async () => (await create(server, bob.auth, { title: "before logout" }))[0]!,
    );
  });

  it("an admin changing the user's role closes its stream (8.3, 3.6)", async () => {
    const bob = await session(server, "bob");
    const feed = await openFeed(server.url, NOTES, bob.auth);
    const adam = await session(server, "adam");
    await cutOff(
      feed,
      async () => {
        const res = await server.request("PATCH", `/api/data/users/${bob.id}`, { role: "reader" }, root);
        expect(res.status, res.text).toBe(200);
      },
      async () => (await create(server, adam.auth, { title: "before the role change" }))[0]!,
    );
  });

  it("a revoked API key's stream is closed (8.3, 5.5)", async () => {
    const key = await server.request(
      "POST",
      "/api/system/keys",
      { name: "feed", kind: "publishable", tenant: 1 },
      root,
    );
    expect(key.status, key.text).toBe(201);
    const feed = await openFeed(server.url, NOTES, { apikey: key.body.data.key });
    const adam = await session(server, "adam");
    await cutOff(
      feed,
      async () => {
        const res = await server.request("DELETE", `/api/system/keys/${key.body.data.id}`, undefined, root);
        expect(res.status, res.text).toBe(200);
      },
      async () => (await create(server, adam.auth, { title: "public before the revocation", public: true }))[0]!,
    );
  });

  // The hub verifies a subscriber's credentials before sending each event, not only every recheck_ms: with a
  // 5 s recheck, what is committed after a revocation must still not go out.
  it("an event written after a logout is not sent, even before the next recheck (8.3)", async () => {
    const slow = await startServer(config({ recheck_ms: 5000 }), { options: { seed: seedTenants } });
    try {
      const [alice, bob] = [await session(slow, "alice"), await session(slow, "bob")];
      const feed = await openFeed(slow.url, NOTES, alice.auth);
      expect((await slow.request("POST", "/api/auth/logout", undefined, alice.auth)).status).toBe(200);
      const [after] = await create(slow, bob.auth, { title: "after the logout" });
      const [marker] = await create(slow, bob.auth, { title: "marker" });
      await Promise.race([feed.until((e) => e.data.id === marker).catch(() => {}), feed.ended]);
      feed.close();
      expect(ids(feed)).not.toContain(after);
    } finally {
      await slow.close();
    }
  });

  it("a token that expires ends its stream at its expiry, without any write (8.3, 3.2)", async () => {
    const short = await startServer(config({ recheck_ms: 100 }, { expires: "2s" }), { options: { seed: seedTenants } });
    try {
      const alice = await session(short, "alice");
      const feed = await openFeed(short.url, NOTES, alice.auth);
      const expires = decodeJwt(alice.auth.authorization!.slice("Bearer ".length)).exp! * 1000;
      await feed.ended;
      // not before the expiry: the server's timer counts whole milliseconds on the monotonic clock, so it may
      // fire a fraction of a millisecond before Date.now() reaches exp (a few ms of slack, against a 2 s token)
      expect(Date.now()).toBeGreaterThanOrEqual(expires - 5);
      expect(feed.events).toEqual([{ event: "close", id: undefined, data: { reason: "the token expired" } }]);
      expect(short.app.feed!.size).toBe(0);
    } finally {
      await short.close();
    }
  });
});

describe("streams are limited per caller and per server (8.2)", () => {
  let server: TestServer;
  const open: FeedStream[] = [];
  const auth: Partial<Record<Person, Record<string, string>>> = {};
  const feed = async (who: Person) => {
    const stream = await openFeed(server.url, NOTES, auth[who]);
    if (stream.status === 200) open.push(stream);
    return stream;
  };
  const size = () => server.app.feed!.size;

  beforeAll(async () => {
    const limits = { max_subscribers_per_caller: 2, max_subscribers: 3 };
    server = await startServer(config(limits), { options: { seed: seedTenants } });
    for (const who of ["alice", "bob", "carol"] as const) auth[who] = (await session(server, who)).auth;
  });
  afterEach(async () => {
    for (const stream of open.splice(0)) stream.close();
    await eventually(() => size() === 0, "every stream closed");
  });
  afterAll(() => server?.close());

  it("a client that disconnects frees its slot (8.2)", async () => {
    const stream = await feed("alice");
    expect(size()).toBe(1);
    stream.close();
    await eventually(() => size() === 0, "the slot freed");
  });

  it("a caller's stream beyond max_subscribers_per_caller is 429; closing one frees a slot (8.2)", async () => {
    const [one] = [await feed("alice"), await feed("alice")];
    const third = await feed("alice");
    expect(third.status).toBe(429);
    expect(third.body.error.message).toBe("at most 2 change-feed streams per caller");
    expect((await feed("bob")).status).toBe(200);
    one!.close();
    await eventually(() => size() === 2, "the slot freed");
    expect((await feed("alice")).status).toBe(200);
  });

  it("a stream beyond max_subscribers of the server is 429, whoever asks; closing one frees a slot (8.2)", async () => {
    const [one] = [await feed("alice"), await feed("alice"), await feed("bob")];
    const refused = await feed("carol");
    expect(refused.status).toBe(429);
    expect(refused.body.error.message).toBe("this server already holds 3 change-feed streams");
    one!.close();
    await eventually(() => size() === 2, "the slot freed");
    expect((await feed("carol")).status).toBe(200);
  });
});

describe("a slow subscriber is dropped and never slows writers (8.2)", () => {
  let writer: TestServer;
  let small: ServerHandle;
  beforeAll(async () => {
    writer = await startServer(config({ buffer: 1000 }), { options: { seed: seedTenants } });
    small = await alongside(writer, config({ buffer: 5 }));
  });
  afterAll(async () => {
    await small?.close();
    await writer?.close();
  });

  it("a queue overflowed by one 50-row create ends that stream; the writer and a roomy stream get everything; Last-Event-ID resumes it (8.2)", async () => {
    const alice = await session(writer, "alice");
    const slow = await openFeed(small.url, NOTES, alice.auth);
    const roomy = await openFeed(writer.url, NOTES, alice.auth);
    const [warmUp] = await create(writer, alice.auth, { title: "warm-up" });
    await slow.until((e) => e.data.id === warmUp);
    const rows = await create(
      writer,
      alice.auth,
      Array.from({ length: 50 }, (_, i) => ({ title: `bulk ${i}` })),
    );
    expect(rows).toHaveLength(50);
    await roomy.until((e) => e.data.id === rows[49]);
    roomy.close();
    expect(ids(roomy)).toEqual([warmUp, ...rows]);
    await slow.ended;
    expect(small.app!.feed!.size).toBe(0);
    const received = ids(slow);
    expect(received.length).toBeLessThan(51);
    const resumed = await openFeed(small.url, NOTES, { ...alice.auth, "last-event-id": lastId(slow) });
    await resumed.until((e) => e.data.id === rows[49]);
    resumed.close();
    expect([...received, ...ids(resumed)]).toEqual([warmUp, ...rows]);
  });

  it("a client that stops reading is dropped once its queue fills behind the socket; writes and readers go on (8.2)", async () => {
    const alice = await session(writer, "alice");
    // a queue of 50, and writes of 40 rows that a reading stream takes before the next: only a stalled one fills it
    const stalled = await alongside(writer, config({ buffer: 50 }));
    const socket = await stalledReader(stalled.url, NOTES, alice.auth);
    const reader = await openFeed(stalled.url, NOTES, alice.auth);
    try {
      expect(stalled.app!.feed!.size).toBe(2);
      // ~5 kB a row: the socket's buffers fill after some MB, then the stream's queue
      const rows = Array.from({ length: 40 }, () => ({ title: "x".repeat(5000) }));
      let writes = 0;
      while (stalled.app!.feed!.size === 2 && writes++ < 500) {
        const created = await create(writer, alice.auth, rows);
        await reader.until((e) => e.data.id === created.at(-1));
      }
      expect(stalled.app!.feed!.size).toBe(1);
      expect(reader.isEnded()).toBe(false);
      expect(writes).toBeGreaterThan(2);
    } finally {
      reader.close();
      socket.destroy();
      await stalled.close();
    }
  });
});

describe("Last-Event-ID the outbox cannot resume from is a reset (8.2)", () => {
  let server: TestServer;
  let alice: Record<string, string>;
  beforeAll(async () => {
    server = await startServer(config(), { options: { seed: seedTenants } });
    alice = (await session(server, "alice")).auth;
  });
  afterAll(() => server?.close());

  it("older than retention kept: reset, then the events after the oldest kept (8.2)", async () => {
    const first = await openFeed(server.url, NOTES, alice);
    const gone = await create(server, alice, [{ title: "p1" }, { title: "p2" }, { title: "p3" }]);
    await first.until((e) => e.data.id === gone[2]);
    first.close();
    const [a, , c] = first.changes().map((e) => e.id!);
    expect(await server.app.feed!.prune(new Date(Date.now() + 25 * HOUR))).toBeGreaterThanOrEqual(3);
    const [kept] = await create(server, alice, { title: "p4" });
    const stale = await openFeed(server.url, NOTES, { ...alice, "last-event-id": a! });
    await stale.until((e) => e.data.id === kept);
    stale.close();
    expect(stale.events.map((e) => e.event)).toEqual(["reset", "create"]);
    expect(stale.events[0]!.data.reason).toBe("events after this Last-Event-ID are no longer kept");
    const [resumesAfter, pruned] = await seqs(server.app, [{ id: stale.events[0]!.data.resumes_after }, { id: c }]);
    expect(resumesAfter).toBe(pruned);
    // the last pruned event missed nothing: it resumes without a reset
    const exact = await openFeed(server.url, NOTES, { ...alice, "last-event-id": c! });
    await exact.until((e) => e.data.id === kept);
    exact.close();
    expect(exact.events.map((e) => e.event)).toEqual(["create"]);
  });

  it("greater than the head: reset, then what comes next (8.2)", async () => {
    const beyond = await server.app.feed!.ids.seal(999_999_999);
    const feed = await openFeed(server.url, NOTES, { ...alice, "last-event-id": beyond });
    await feed.until((e) => e.event === "reset");
    const [next] = await create(server, alice, { title: "after the reset" });
    await feed.until((e) => e.data.id === next);
    feed.close();
    expect(feed.events[0]!.data).toMatchObject({ reason: "this Last-Event-ID is not an event of this database" });
    expect(feed.events.map((e) => e.event)).toEqual(["reset", "create"]);
    const [resumesAfter, first] = await seqs(server.app, [{ id: feed.events[0]!.data.resumes_after }, feed.events[1]!]);
    expect(first).toBe(resumesAfter! + 1);
  });
});

describe("an idle stream is kept alive (8.2)", () => {
  it("receives a `: keep-alive` comment every heartbeat_ms and no event (8.2)", async () => {
    const server = await startServer(config({ heartbeat_ms: 100 }), { options: { seed: seedTenants } });
    try {
      const alice = await session(server, "alice");
      const feed = await openFeed(server.url, NOTES, alice.auth);
      await eventually(() => feed.comments() >= 3, "three keep-alive comments");
      feed.close();
      expect(feed.events).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
