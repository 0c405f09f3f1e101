/**
 * A delete's foreign-key effects are mutation events (§7.2, §8): the rows an `on_delete: "cascade"` key deletes
 * (through every level) and those a "set null" key changes are heard by the audit trail and by after-commit
 * listeners like the rows the caller deleted, one event per row, in the delete's transaction; a delete that a
 * "restrict" key or the guard refuses emits nothing, and without a listener a delete reads nothing more.
 */
import { boolean, type CitadelConfig, em, entity, json, relation, text } from "citadel";
import type { KyselyPlugin } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openAccess } from "../../src/app.js";
import { DataEngine } from "../../src/data/engine.js";
import { DataEvents, type MutationEvent } from "../../src/data/events.js";
import { dialectOf } from "../../src/db/connection.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { countStatements } from "../helpers/statements.js";

const schema = em(
  {
    posts: entity("posts", { title: text().required() }),
    comments: entity("comments", { body: text().required(), flagged: boolean().default(false), meta: json() }),
    likes: entity("likes", { note: text() }),
    pins: entity("pins", { label: text() }),
    users: entity("users", {}),
  },
  ({ posts, comments, likes, pins, users }) => [
    relation(posts, "author").manyToOne(users), // set null, the default
    relation(comments, "post").manyToOne(posts, { on_delete: "cascade" }),
    relation(comments, "author").manyToOne(users, { on_delete: "set null" }),
    // set null, into its own entity: a reply to a deleted comment stays, without its parent
    relation(comments, "reply_to").manyToOne(comments, { inversedBy: "replies" }),
    relation(likes, "comment").manyToOne(comments, { on_delete: "cascade" }), // posts -> comments -> likes
    relation(pins, "post").manyToOne(posts, { on_delete: "restrict" }),
  ],
);

const PASSWORD = "cascade-tests-password";

const config: CitadelConfig = {
  data: schema.toJSON(),
  auth: {
    enabled: true,
    password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
    rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
    roles: {
      member: {
        permissions: [
          "data.entity.read",
          {
            permission: "data.entity.delete",
            policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { author_id: "@user.id" } }],
          },
        ],
      },
      admin: { implicit_allow: true },
    },
  },
  audit: { enabled: true },
};

/** An event as the tests compare it: what happened to which row. */
const brief = (e: MutationEvent) => `${e.action} ${e.entity} ${e.id}`;

/**
 * A server on `config` whose seed creates `users` (email, role), and the batches of events its after-commit
 * listeners hear (`heard`, emptied in place between tests).
 */
async function listenedServer(config: CitadelConfig, users: [string, string][]) {
  const server = await startServer(config, {
    options: {
      seed: async (ctx) => {
        for (const [email, role] of users) await ctx.app.module.auth.createUser({ email, password: PASSWORD, role });
      },
    },
  });
  const heard: MutationEvent[][] = [];
  server.app.engine.events.onCommit((events) => {
    heard.push(events);
  });
  return { server, heard };
}

describe("a delete's foreign-key effects are mutation events (7.2, 8)", () => {
  let server: TestServer;
  let admin: Record<string, string>;
  let heard: MutationEvent[][] = [];

  const call = async (method: string, path: string, body?: unknown, as = admin): Promise<TestResponse> =>
    server.request(method, path, body, as);
  const make = async (entityName: string, body: Row): Promise<Row> => {
    const res = await call("POST", `/api/data/${entityName}`, body);
    expect(res.status, res.text).toBe(201);
    return res.body.data;
  };
  /** The data entries one request left in the trail. */
  const entriesOf = async (res: TestResponse): Promise<Row[]> => {
    const where = encodeURIComponent(
      JSON.stringify({ request_id: res.headers.get("x-request-id"), action: { $like: "data.*" } }),
    );
    const found = await call("GET", `/api/system/audit?where=${where}&limit=1000&sort=id`);
    expect(found.status, found.text).toBe(200);
    return found.body.data;
  };
  const stored = async (table: string, id: number): Promise<Row | undefined> =>
    (await server.rows(`select * from ${table} where id = ?`, id))[0];

  /** A post of `author` with two comments (the second replying to the first), each liked. */
  const thread = async (author: number | null, title: string) => {
    const post = await make("posts", { title, author_id: author });
    const first = await make("comments", { body: `${title} 1`, post_id: post.id, author_id: author, meta: { n: 1 } });
    const second = await make("comments", {
      body: `${title} 2`,
      post_id: post.id,
      author_id: author,
      reply_to_id: first.id,
    });
    const likes = [
      await make("likes", { note: "a", comment_id: first.id }),
      await make("likes", { note: "b", comment_id: first.id }),
      await make("likes", { note: "c", comment_id: second.id }),
    ];
    return { post, first, second, likes };
  };

  beforeAll(async () => {
    ({ server, heard } = await listenedServer(config, [
      ["admin@test.com", "admin"],
      ["mia@test.com", "member"],
      ["max@test.com", "member"],
    ]));
    admin = bearer(await login(server, "admin@test.com", PASSWORD));
  });
  afterAll(() => server?.close());
  beforeEach(() => {
    heard.length = 0;
  });

  it("deleting a post emits its comments and their likes (two-level cascade) and a reply elsewhere losing its parent (set null)", async () => {
    const { post, first, second, likes } = await thread(null, "t1");
    const other = await make("posts", { title: "other" });
    const reply = await make("comments", { body: "elsewhere", post_id: other.id, reply_to_id: first.id });
    const replyBefore = await stored("comments", reply.id);
    const firstStored = await stored("comments", first.id);
    heard.length = 0;

    const res = await call("DELETE", `/api/data/posts/${post.id}`);
    expect(res.status, res.text).toBe(200);

    // after commit: one batch, the caller's row first, then the cascade level by level, then the set-null update
    expect(heard).toHaveLength(1);
    const events = heard[0]!;
    expect(events.map(brief)).toEqual([
      `delete posts ${post.id}`,
      `delete comments ${first.id}`,
      `delete comments ${second.id}`, // a reply deleted with its parent is not also an update
      ...likes.map((l) => `delete likes ${l.id}`),
      `update comments ${reply.id}`,
    ]);
    const byKey = new Map(events.map((e) => [brief(e), e]));
    // whole stored rows, decoded (boolean, json)
    expect(byKey.get(`delete comments ${first.id}`)).toMatchObject({
      before: { id: first.id, body: "t1 1", flagged: false, meta: { n: 1 }, post_id: post.id },
      after: null,
    });
    expect(byKey.get(`delete comments ${first.id}`)!.before!.updated_at).toBe(firstStored!.updated_at);
    expect(byKey.get(`delete likes ${likes[2]!.id}`)!.before).toMatchObject({ note: "c", comment_id: second.id });
    // the update: the row as it was, and as the database left it (only the key changed, updated_at too stays)
    const update = byKey.get(`update comments ${reply.id}`)!;
    expect(update.before).toMatchObject({ reply_to_id: first.id, body: "elsewhere", post_id: other.id });
    expect(update.after).toEqual({ ...update.before, reply_to_id: null });
    expect(update.after!.updated_at).toBe(replyBefore!.updated_at);
    expect(await stored("comments", reply.id)).toMatchObject({ reply_to_id: null });

    // the trail: exactly one entry per affected row, by the same actor and request
    const entries = await entriesOf(res);
    expect(entries.map((e) => `${e.action.slice(5)} ${e.entity} ${e.row_id}`)).toEqual(events.map(brief));
    for (const e of entries) expect(e.actor).toMatchObject({ user_id: 1, role: "admin" });
    const entry = (key: string) => entries.find((e) => `${e.action.slice(5)} ${e.entity} ${e.row_id}` === key)!;
    expect(entry(`update comments ${reply.id}`).changes).toEqual({ reply_to_id: [first.id, null] });
    expect(entry(`delete comments ${second.id}`).changes).toMatchObject({
      body: ["t1 2", null],
      post_id: [post.id, null],
      reply_to_id: [first.id, null],
    });
    expect(entry(`delete likes ${likes[0]!.id}`).changes).toMatchObject({ note: ["a", null] });
    for (const id of [first.id, second.id]) expect(await stored("comments", id)).toBeUndefined();
    for (const like of likes) expect(await stored("likes", like.id)).toBeUndefined();
  });

  it("deleting a user emits the posts and comments whose author became null (set null on two keys)", async () => {
    const user = await make("users", { email: "gone@test.com" });
    const { post, first, second } = await thread(user.id, "t2");
    heard.length = 0;
    const res = await call("DELETE", `/api/data/users/${user.id}`);
    expect(res.status, res.text).toBe(200);
    const events = heard[0]!;
    expect(events.map(brief)).toEqual([
      `delete users ${user.id}`,
      `update posts ${post.id}`,
      `update comments ${first.id}`,
      `update comments ${second.id}`,
    ]);
    for (const e of events.slice(1)) {
      expect(e.before!.author_id).toBe(user.id);
      expect(e.after).toEqual({ ...e.before, author_id: null });
    }
    // the whole stored row: hidden fields too (the trail redacts them)
    expect(events[0]!.before).toHaveProperty("password_hash");
    const entries = await entriesOf(res);
    expect(entries.map((e) => `${e.action.slice(5)} ${e.entity} ${e.row_id}`)).toEqual(events.map(brief));
    expect(entries.slice(1).map((e) => e.changes)).toEqual([
      { author_id: [user.id, null] },
      { author_id: [user.id, null] },
      { author_id: [user.id, null] },
    ]);
  });

  it("delete many: every post's dependents, each row once", async () => {
    const a = await thread(null, "bulk-a");
    const b = await thread(null, "bulk-b");
    // a comment on post b replying to one on post a: deleted with b, not also updated for a
    const cross = await make("comments", { body: "cross", post_id: b.post.id, reply_to_id: a.first.id });
    heard.length = 0;
    const res = await call("DELETE", "/api/data/posts", { title: { $like: "bulk-*" } });
    expect(res.status, res.text).toBe(200);
    const events = heard[0]!;
    const comments = [a.first, a.second, b.first, b.second, cross].map((c) => c.id).sort((x, y) => x - y);
    const likes = [...a.likes, ...b.likes].map((l) => l.id).sort((x, y) => x - y);
    expect(events.map(brief)).toEqual([
      `delete posts ${a.post.id}`,
      `delete posts ${b.post.id}`,
      ...comments.map((id) => `delete comments ${id}`),
      ...likes.map((id) => `delete likes ${id}`),
    ]);
    const entries = await entriesOf(res);
    expect(entries).toHaveLength(events.length);
    expect(new Set(entries.map((e) => `${e.entity} ${e.row_id}`)).size).toBe(events.length);
  });

  it("a delete refused by a restrict key emits nothing and leaves every row (7.2)", async () => {
    const { post, first, likes } = await thread(null, "pinned");
    await make("pins", { label: "keep", post_id: post.id });
    heard.length = 0;
    const res = await call("DELETE", `/api/data/posts/${post.id}`);
    expect(res.status, res.text).toBe(409);
    const many = await call("DELETE", "/api/data/posts", { id: post.id });
    expect(many.status, many.text).toBe(409);
    expect(heard).toEqual([]);
    expect(await entriesOf(res)).toEqual([]);
    expect(await entriesOf(many)).toEqual([]);
    expect(await stored("posts", post.id)).toBeDefined();
    expect(await stored("comments", first.id)).toBeDefined();
    expect(await stored("likes", likes[0]!.id)).toBeDefined();
  });

  it("a delete the guard refuses emits nothing (4.5, 7.2)", async () => {
    const users = await server.rows(
      "select id, email from users where email in (?, ?)",
      "mia@test.com",
      "max@test.com",
    );
    const mia = users.find((u) => u.email === "mia@test.com")!.id as number;
    const { post, first } = await thread(mia, "mia's");
    const max = bearer(await login(server, "max@test.com", PASSWORD));
    heard.length = 0;
    const one = await call("DELETE", `/api/data/posts/${post.id}`, undefined, max);
    expect(one.status, one.text).toBe(403);
    const many = await call("DELETE", "/api/data/posts", { id: post.id }, max);
    expect(many.status, many.text).toBe(200);
    expect(many.body.data).toEqual([]);
    const comment = await call("DELETE", `/api/data/comments/${first.id}`, undefined, max);
    expect(comment.status, comment.text).toBe(403);
    expect(heard).toEqual([]);
    for (const res of [one, many, comment]) expect(await entriesOf(res)).toEqual([]);
    expect(await stored("comments", first.id)).toBeDefined();
    // her own post: allowed, and its dependents are emitted under her name
    const own = await call(
      "DELETE",
      `/api/data/posts/${post.id}`,
      undefined,
      bearer(await login(server, "mia@test.com", PASSWORD)),
    );
    expect(own.status, own.text).toBe(200);
    const entries = await entriesOf(own);
    expect(entries.length).toBe(6); // the post, two comments, three likes
    for (const e of entries) expect(e.actor).toMatchObject({ user_id: mia, role: "member" });
  });

  it("without a listener a delete reads no dependents: the same statements as a delete without any", async () => {
    const counted = countStatements(server.app);
    const { post } = await thread(null, "quiet");
    const lonely = await make("posts", { title: "lonely" });
    counted.reset();
    await counted.data.deleteOne("posts", lonely.id);
    const alone = counted.statements();
    counted.reset();
    await counted.data.deleteOne("posts", post.id);
    expect(counted.statements()).toEqual(alone);
    expect(await server.rows("select id from comments where post_id = ?", post.id)).toEqual([]);
  });

  /** A trusted accessor whose engine has a committed listener of its own and counts the statements it sends. */
  const listening = () => {
    const heardHere: MutationEvent[][] = [];
    let kinds: string[] = [];
    const plugin: KyselyPlugin = {
      transformQuery: ({ node }) => {
        kinds.push(node.kind);
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    const events = new DataEvents();
    events.onCommit((e) => heardHere.push(e));
    const engine = new DataEngine(server.app.db.withPlugin(plugin), server.app.engine.models, events);
    const data = engine.as(openAccess({ role: undefined, trusted: true }), { defaultLimit: 20, maxLimit: 1000 });
    return {
      data,
      heard: heardHere,
      statements: () => kinds,
      reset: () => {
        kinds = [];
        heardHere.length = 0;
      },
    };
  };

  it("with a listener, the rows a delete reaches cost statements per key and level, not per row (2.3)", async () => {
    const engine = listening();
    const small = await make("posts", { title: "small" });
    await make("likes", { comment_id: (await make("comments", { body: "s", post_id: small.id })).id });
    const big = await make("posts", { title: "big" });
    for (let i = 0; i < 5; i++) {
      const comment = await make("comments", { body: `b${i}`, post_id: big.id });
      for (let j = 0; j < 3; j++) await make("likes", { comment_id: comment.id });
    }
    engine.reset();
    await engine.data.deleteOne("posts", small.id);
    const few = engine.statements();
    expect(engine.heard[0]!.map((e) => e.action)).toEqual(["delete", "delete", "delete"]);
    engine.reset();
    await engine.data.deleteOne("posts", big.id);
    expect(engine.heard[0]).toHaveLength(1 + 5 + 15);
    expect(engine.statements()).toEqual(few);
  });

  it("reads the rows it reaches in slices within the dialect's bind limit (2.3)", async () => {
    const engine = listening();
    const threads = [await thread(null, "chunk-a"), await thread(null, "chunk-b"), await thread(null, "chunk-c")];
    const expected = [
      ...threads.map((t) => `delete posts ${t.post.id}`),
      ...threads.flatMap((t) => [t.first.id, t.second.id]).map((id) => `delete comments ${id}`),
      ...threads.flatMap((t) => t.likes.map((l) => `delete likes ${l.id}`)),
    ];
    // a bind limit of 2 makes every read of the reached rows several statements
    const dialect = dialectOf(server.app.db) as { maxBindValues: number };
    const limit = dialect.maxBindValues;
    dialect.maxBindValues = 2;
    engine.reset();
    try {
      await engine.data.deleteMany("posts", { title: { $like: "chunk-*" } });
    } finally {
      dialect.maxBindValues = limit;
    }
    expect(engine.heard[0]!.map(brief)).toEqual(expected);
    const sliced = engine.statements().filter((k) => k === "SelectQueryNode").length;
    // the same delete again, with the real limit: fewer reads, the same events
    for (const title of ["whole-a", "whole-b", "whole-c"]) await thread(null, title);
    engine.reset();
    await engine.data.deleteMany("posts", { title: { $like: "whole-*" } });
    expect(engine.heard[0]).toHaveLength(expected.length);
    expect(engine.statements().filter((k) => k === "SelectQueryNode").length).toBeLessThan(sliced);
  });
});

/**
 * A request's delete is bounded in what its foreign keys reach while events are recorded (§2.3): each reached
 * row's image is read, kept until the commit and written to the trail and the outbox. What the caller may read of
 * those rows and the rest are held to the bounds apart (10,000 rows, `max_response_bytes` as stored, each), and
 * refused with 400 before any image is read, so a caller who pads what it reads cannot find what it may not.
 * Trusted code (a script, `app.module.data`) has no bound. Here a member reads comments that are not flagged.
 */
describe("a request's delete reaches a bounded number of rows and bytes through its keys (2.3, 7.2)", () => {
  const BUDGET = 4096;
  let server: TestServer;
  let mia: Record<string, string>;
  let heard: MutationEvent[][] = [];
  const roles = {
    member: {
      permissions: [
        {
          permission: "data.entity.read",
          policies: [{ condition: { entity: "comments" }, effect: "filter" as const, filter: { flagged: false } }],
        },
        {
          permission: "data.entity.delete",
          policies: [{ condition: { entity: "posts" }, effect: "filter" as const, filter: { author_id: "@user.id" } }],
        },
      ],
    },
  };
  const bounded: CitadelConfig = {
    ...config,
    data: { ...(schema.toJSON() as object), max_response_bytes: BUDGET },
    auth: { ...config.auth, roles },
  };

  beforeAll(async () => {
    ({ server, heard } = await listenedServer(bounded, [["mia@test.com", "member"]]));
    mia = bearer(await login(server, "mia@test.com", PASSWORD));
  });
  afterAll(() => server?.close());
  beforeEach(() => {
    heard.length = 0;
  });

  const data = () => server.app.module.data;
  const miaId = async () => (await server.rows("select id from users where email = ?", "mia@test.com"))[0]!.id;
  const count = async (table: string, column: string, id: number) =>
    Number((await server.rows(`select count(*) as n from ${table} where ${column} = ?`, id))[0]!.n);
  const trailSize = async () => Number((await server.rows("select count(*) as n from citadel_audit"))[0]!.n);

  /** Mia's post, with `comments` comments of `size` characters (flagged: hidden from her) written by trusted code. */
  const postWith = async (comments: number, size: number, flagged = false) => {
    const post = (await data().create("posts", { title: "hers", author_id: await miaId() })) as Row;
    for (let left = comments; left > 0; left -= 1000) {
      const rows = Array.from({ length: Math.min(1000, left) }, (_, i) => ({
        body: `${i}`.padEnd(size, "x"),
        post_id: post.id,
        flagged,
      }));
      await data().create("comments", rows);
    }
    return post.id as number;
  };
  const deletePost = (id: number) => server.request("DELETE", `/api/data/posts/${id}`, undefined, mia);

  /** The delete was refused with 400 at `path`, naming `bound`, and nothing changed or was recorded. */
  const expectRefused = async (
    res: TestResponse,
    path: string,
    bound: RegExp,
    post: number,
    comments: number,
    trail: number,
  ) => {
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toMatchObject({ code: "bad_request", path });
    expect(res.body.error.message).toMatch(bound);
    expect(res.body.error.message).toMatch(/on_delete keys/);
    expect(await count("posts", "id", post)).toBe(1);
    expect(await count("comments", "post_id", post)).toBe(comments);
    expect(await trailSize()).toBe(trail);
    expect(heard).toEqual([]);
  };

  it("is 400 naming max_response_bytes when the rows it reaches hold more, readable or not, on delete one and many", async () => {
    // three comments of 2,000 bytes: each one fits, together over the 4,096 bytes
    const readable = await postWith(3, 2000);
    // three hidden comments of 3,000 bytes: two whole KiB each, six together, past the 4 KiB
    const hidden = await postWith(3, 3000, true);
    const trail = await trailSize();
    heard.length = 0;
    const one = await deletePost(readable);
    await expectRefused(
      one,
      "id",
      /hold [\d,]+ bytes you may read.*at most 4,096 bytes per request/,
      readable,
      3,
      trail,
    );
    expect(one.body.error.bytes).toBeGreaterThan(BUDGET);
    const many = await server.request("DELETE", "/api/data/posts", { id: readable }, mia);
    await expectRefused(many, "where", /at most 4,096 bytes per request \(max_response_bytes\)/, readable, 3, trail);
    // what she cannot read: refused without a size
    const secret = await deletePost(hidden);
    await expectRefused(secret, "id", /more in values the caller cannot read.*at most 4,096 bytes/, hidden, 3, trail);
    expect(secret.body.error).not.toHaveProperty("bytes");
    // within the budget: the same delete passes, with one entry per row
    const small = await postWith(3, 500);
    const before = await trailSize();
    heard.length = 0;
    const fits = await deletePost(small);
    expect(fits.status, fits.text).toBe(200);
    expect(heard[0]!.map(brief)).toHaveLength(4);
    expect(await trailSize()).toBe(before + 4);
    // trusted code has no bound
    expect(await data().deleteMany("posts", { id: { $in: [readable, hidden] } })).toHaveLength(2);
    expect(await count("comments", "post_id", readable)).toBe(0);
    expect(await trailSize()).toBe(before + 4 + 8);
  });

  it("no padding finds the length of what she may not read: not with rows she reads, nor with rows she cannot", async () => {
    // two posts whose hidden comments differ by one byte; a pin (restrict) makes every delete that passes the
    // bounds fail after them (409), so she could ask again and again with a comment of any length of her own:
    // one she reads, or one she wrote but may not read back (flagged). Hidden values count in whole KiB.
    const answers = new Map<string, string[]>();
    for (const flagged of [false, true])
      for (const hiddenLength of [2500, 2501]) {
        const post = await postWith(1, hiddenLength, true);
        await data().create("pins", { post_id: post });
        const seen: string[] = [];
        for (const padding of [1, 900, 1595, 1596, 1597, 2100, 3100, 5000]) {
          const pad = (await data().create("comments", { body: "p".repeat(padding), post_id: post, flagged })) as Row;
          const res = await deletePost(post);
          seen.push(`${res.status} ${res.body.error?.message}`);
          await data().deleteMany("comments", { id: pad.id });
        }
        answers.set(`${flagged} ${hiddenLength}`, seen);
        expect(await count("comments", "post_id", post)).toBe(1);
      }
    for (const flagged of [false, true]) {
      expect(answers.get(`${flagged} 2500`)).toEqual(answers.get(`${flagged} 2501`));
      // the answers do move with the padding: 409 (the pin) while it fits, 400 past the budget
      const statuses = answers.get(`${flagged} 2500`)!.map((a) => a.slice(0, 3));
      expect(statuses).toContain("409");
      expect(statuses).toContain("400");
    }
  });

  it("is 400 when it reaches more than 10,000 rows she may not read, before reading them", async () => {
    const post = await postWith(10_001, 1, true);
    const trail = await trailSize();
    heard.length = 0;
    await expectRefused(
      await deletePost(post),
      "id",
      /more than 10,000 rows the caller may not read/,
      post,
      10_001,
      trail,
    );
    // 10,000 of them are within the row bound (and their one-byte values within the byte bound): deleted
    const [first] = await server.rows("select min(id) as id from comments where post_id = ?", post);
    expect(await data().deleteMany("comments", { id: first!.id })).toHaveLength(1);
    heard.length = 0;
    const res2 = await deletePost(post);
    expect(res2.status, res2.text).toBe(200);
    expect(heard[0]).toHaveLength(10_001);
    expect(await count("comments", "post_id", post)).toBe(0);
  });
});
