/**
 * Appending to the chain (7.2, 7.3). An entry's hash is what the chain has always computed, whichever way the
 * trail now gets there: the SHA-256 of the previous hash and the entry's canonical JSON, synchronous where the
 * runtime has node:crypto and Web Crypto elsewhere, the same digest. An append chains after the head its
 * server last left, which the head's UPDATE checks: two statements then, three when another server appended
 * in between or the last append was rolled back, and one chain either way. A create of 1,000 rows appends its
 * 1,000 entries in a few INSERTs, as one chain.
 */
import { type CitadelApp, type CitadelConfig, createApp, em, entity, text } from "citadel";
import type { KyselyPlugin } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuditEntry,
  type AuditInput,
  canonical,
  entryHash,
  GENESIS,
  hashedText,
  NO_ACTOR,
  sha256Hex,
  webSha256Hex,
} from "../../src/audit/entry.js";
import { appendEntries } from "../../src/audit/store.js";
import type { Db } from "../../src/db/connection.js";
import { startServer, type TestServer } from "../helpers/server.js";

type Unhashed = Omit<AuditEntry, "hash">;

const created: Unhashed = {
  id: 1,
  at: "2026-01-02T03:04:05.678Z",
  action: "data.create",
  entity: "posts",
  row_id: 7,
  account_id: null,
  actor: { user_id: 3, role: "author", key_id: null, account_id: null, ip: "127.0.0.1" },
  request_id: "req-1",
  changes: {
    title: [null, 'Héllo "world"\n✓'],
    published: [null, true],
    tags: [null, ["a", { z: 1, a: [2, null] }]],
    n: [null, 1.5],
  },
  reason: null,
  policy_hash: "a".repeat(64),
  prev_hash: GENESIS,
};
const failedLogin: Unhashed = {
  id: 2,
  at: "2026-01-02T03:04:06.000Z",
  action: "auth.login_failed",
  entity: "users",
  row_id: null,
  account_id: null,
  actor: { user_id: null, role: null, key_id: null, account_id: null, ip: null },
  request_id: null,
  changes: null,
  reason: 'wrong password: "x@y.z"',
  policy_hash: "b".repeat(64),
  prev_hash: "c".repeat(64),
};

describe("an entry's hash (7.3)", () => {
  it("is the hash chains written before got: they still verify", async () => {
    // computed by the trail as it was before (Web Crypto over `${prev_hash}\n${canonical(content)}`)
    expect(await entryHash(created)).toBe("b79e03ebf7cf16c140879303d9d4c293b8fbc9015378eeabb13221f601a3b000");
    expect(await entryHash(failedLogin)).toBe("d2b127101e8334c9bc8cfb3b710354b8cf4c6d316598e6b7d8263047ddbd6918");
  });

  it("covers the previous hash and the canonical JSON of everything else, actor and changes as stored", () => {
    for (const entry of [created, failedLogin]) {
      // the entry's tenant is the actor's here: not covered apart (the next test)
      const { prev_hash, account_id, ...content } = entry;
      const expected = `${prev_hash}\n${canonical(content)}`;
      expect(hashedText(entry)).toBe(expected);
      expect(hashedText(entry, canonical(entry.actor), canonical(entry.changes))).toBe(expected);
    }
  });

  it("covers the entry's tenant where it is not the actor's, so moving it to another tenant's view shows (7.4)", async () => {
    const own = { ...created, account_id: 5, actor: { ...created.actor, account_id: 5 } };
    const { prev_hash, account_id, ...content } = own;
    expect(hashedText(own)).toBe(`${prev_hash}\n${canonical(content)}`);
    const others = { ...created, account_id: 6, actor: { ...created.actor, account_id: 5 } };
    expect(hashedText(others)).toBe(`${prev_hash}\n${canonical({ ...content, account_id: 6 })}`);
    const hashes = [own, others, { ...own, account_id: null }, { ...others, account_id: 7 }].map(entryHash);
    expect(new Set(await Promise.all(hashes)).size).toBe(4);
  });

  it("is the same digest as Web Crypto's, whatever the text", async () => {
    for (const text of ["", "abc", "é✓😀", "\ud800 lone surrogate", "x".repeat(10_000)])
      expect(await sha256Hex(text)).toBe(await webSha256Hex(text));
  });

  it("canonical JSON sorts keys at every level and leaves out undefined fields", () => {
    expect(canonical({ b: [1, { d: undefined, c: "x" }], a: null, e: undefined })).toBe('{"a":null,"b":[1,{"c":"x"}]}');
    expect(canonical([undefined, "\u2028", 1e21, -0])).toBe(JSON.stringify([null, "\u2028", 1e21, 0]));
  });
});

const config: CitadelConfig = {
  data: em({ items: entity("items", { title: text().required() }) }).toJSON(),
  audit: { enabled: true },
};

/** `db` with a count of the statements it runs (each result passes through the plugin). */
function counting(db: Db) {
  let statements = 0;
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      statements += 1;
      return result;
    },
  };
  return { db: db.withPlugin(plugin), taken: () => statements };
}

describe("an append chains after the head its server last left, as the head's UPDATE checks (7.3)", () => {
  let server: TestServer;
  let other: CitadelApp;
  const denial = (reason: string): AuditInput => ({ action: "access.denied", actor: NO_ACTOR, reason });

  beforeAll(async () => {
    server = await startServer(config);
    // a second server on the same database (appending one after the other, never at once)
    other = await createApp({ connection: server.connection, config });
  });
  afterAll(async () => {
    await other?.close();
    await server?.close();
  });

  /** Append `reason` through the first server in a transaction of its own; the statements it took. */
  const append = async (reason: string) => {
    const { db, taken } = counting(server.app.db);
    await db.transaction().execute((trx) => appendEntries(trx, [denial(reason)], server.app.audit!.policyHash));
    return taken();
  };

  it("two statements while no one else appends; three after another server did; one chain", async () => {
    await append("first");
    expect(await append("second")).toBe(2);
    expect(await append("third")).toBe(2);
    await other.audit!.record(denial("elsewhere"));
    expect(await append("after elsewhere")).toBe(3);
    expect(await append("again")).toBe(2);
    const entries = await server.rows("select id, reason from citadel_audit order by id");
    expect(entries).toEqual(
      ["first", "second", "third", "elsewhere", "after elsewhere", "again"].map((reason, i) => ({ id: i + 1, reason })),
    );
    expect(await server.app.audit!.verify()).toEqual({ ok: true, entries: 6 });
  });

  it("an append rolled back: the next one chains after the head as it is", async () => {
    const before = Number((await server.rows("select seq from citadel_audit_head"))[0]!.seq);
    const undone = server.app.db.transaction().execute(async (trx) => {
      await appendEntries(trx, [denial("undone")], server.app.audit!.policyHash);
      throw new Error("the write failed after its entry");
    });
    await expect(undone).rejects.toThrow("the write failed after its entry");
    expect(await append("after the rollback")).toBe(3);
    const [last] = await server.rows("select id, reason from citadel_audit order by id desc limit 1");
    expect(last).toEqual({ id: before + 1, reason: "after the rollback" });
    expect(await server.app.audit!.verify()).toEqual({ ok: true, entries: before + 1 });
  });
});

describe("a create of 1,000 rows: 1,000 entries in one chain (7.2, 7.3)", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(config);
  });
  afterAll(() => server?.close());

  it("one entry per row, ids in order, and the chain verifies to the head", async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => ({ title: `item ${i}` }));
    const made = (await server.app.module.data.create("items", rows)) as { id: number }[];
    const entries = await server.rows("select id, action, row_id from citadel_audit order by id");
    expect(entries).toEqual(made.map((row, i) => ({ id: i + 1, action: "data.create", row_id: row.id })));
    const [head] = await server.rows("select seq from citadel_audit_head");
    expect(Number(head!.seq)).toBe(1000);
    expect(await server.app.audit!.verify()).toEqual({ ok: true, entries: 1000 });
  });
});
