/**
 * The audit trail's hash chain (7.3) on the engine under test: an entry altered, removed or cut off by hand
 * (the append-only triggers dropped first), its tenant moved, or one written beyond the chain's head, is named
 * by verify; prune removes a prefix past retention_days, records itself and leaves one chain. Three servers
 * writing at once: chain-servers.remote.test.ts.
 */
import type { CitadelConfig } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditEntry, entryHash, NO_ACTOR } from "../../src/audit/entry.js";
import { COLUMNS, decodeEntry, installAudit } from "../../src/audit/store.js";
import { bearer, login } from "../helpers/auth.js";
import { ENGINE } from "../helpers/engines.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

const config = (): CitadelConfig => tenancyConfig({ audit: { enabled: true, retention_days: 30 } });
const DAY = 86_400_000;

/** The append-only triggers (src/dialect/*.ts appendOnlyTrigger), dropped so a test can tamper by hand. */
const DROP_TRIGGERS =
  ENGINE === "postgres"
    ? ["drop trigger if exists citadel_audit_append_only on citadel_audit"]
    : [
        "drop trigger if exists citadel_audit_append_only_update",
        "drop trigger if exists citadel_audit_append_only_delete",
      ];

describe("the hash chain names the first entry that breaks it (7.3)", () => {
  let server: TestServer;
  let last: number;

  /** Run statements with the triggers out of the way, then put them back as the trail installs them. */
  const byHand = async (...statements: [string, ...unknown[]][]) => {
    for (const drop of DROP_TRIGGERS) await server.rows(drop);
    try {
      for (const [sql, ...params] of statements) await server.rows(sql, ...params);
    } finally {
      await installAudit(server.app.db);
    }
  };
  const stored = async (id: number) => (await server.rows("select * from citadel_audit where id = ?", id))[0]!;
  const reinsert = (row: Row): [string, ...unknown[]] => [
    `insert into citadel_audit (${COLUMNS.join(", ")}) values (${COLUMNS.map(() => "?").join(", ")})`,
    ...COLUMNS.map((c) => row[c]),
  ];
  const verify = () => server.app.audit!.verify();

  beforeAll(async () => {
    server = await startServer(config(), { options: { seed: seedTenants } });
    const alice = bearer(await login(server, "alice@a.test", PASSWORD));
    for (const title of ["one", "two", "three", "four"]) {
      const res = await server.request("POST", "/api/data/notes", { title }, alice);
      expect(res.status, res.text).toBe(201);
    }
    const res = await server.request("PATCH", "/api/data/notes/4", { title: "one, again" }, alice);
    expect(res.status, res.text).toBe(200);
    last = Number((await server.rows("select max(id) as n from citadel_audit"))[0]!.n);
    expect(last).toBeGreaterThan(10);
  });
  afterAll(() => server?.close());

  it("an untouched trail verifies, every entry checked", async () => {
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("an entry's reason or changes altered by hand: verify names exactly that entry (was altered)", async () => {
    const id = 8;
    const original = await stored(id);
    await byHand(["update citadel_audit set reason = ? where id = ?", "nothing happened", id]);
    expect(await verify()).toEqual({ ok: false, entries: id - 1, broken: { id, problem: "was altered" } });

    const update = Number(
      (await server.rows("select max(id) as n from citadel_audit where action = 'data.update'"))[0]!.n,
    );
    const changes = await stored(update);
    await byHand(
      ["update citadel_audit set reason = ? where id = ?", original.reason, id],
      ["update citadel_audit set changes = ? where id = ?", JSON.stringify({ title: ["one", "innocent"] }), update],
    );
    expect(await verify()).toEqual({ ok: false, entries: update - 1, broken: { id: update, problem: "was altered" } });
    await byHand(["update citadel_audit set changes = ? where id = ?", changes.changes, update]);
    expect((await verify()).ok).toBe(true);
  });

  it("an altered entry given a fresh hash: the next entry no longer follows it", async () => {
    const id = 5;
    const original = await stored(id);
    const forged: Omit<AuditEntry, "hash"> = { ...decodeEntry(original), reason: "forged" };
    delete (forged as Partial<AuditEntry>).hash;
    const hash = await entryHash(forged);
    await byHand(["update citadel_audit set reason = ?, hash = ? where id = ?", "forged", hash, id]);
    expect(await verify()).toEqual({
      ok: false,
      entries: id,
      broken: { id: id + 1, problem: "does not follow the entry before it" },
    });
    await byHand(["update citadel_audit set reason = ?, hash = ? where id = ?", original.reason, original.hash, id]);
    expect((await verify()).ok).toBe(true);
  });

  it("a middle entry deleted: verify names it as missing", async () => {
    const id = 6;
    const row = await stored(id);
    await byHand(["delete from citadel_audit where id = ?", id]);
    expect(await verify()).toEqual({ ok: false, entries: id - 1, broken: { id, problem: "is missing" } });
    await byHand(reinsert(row));
    expect((await verify()).ok).toBe(true);
  });

  it("the oldest entries deleted by hand, not by prune: named as missing, not taken for a pruned start", async () => {
    const oldest = await server.rows("select * from citadel_audit where id <= 3 order by id");
    await byHand(["delete from citadel_audit where id <= ?", 3]);
    expect(await verify()).toMatchObject({
      ok: false,
      entries: 0,
      broken: { id: 3, problem: "is missing (removed without `citadel audit prune`)" },
    });
    await byHand(...oldest.map(reinsert));
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("an entry's tenant changed by hand, either way, is named: the column a tenant's reads go by is covered (7.4)", async () => {
    const rows = await server.rows("select id, account_id, actor from citadel_audit order by id");
    const tenants = rows.map((r) => ({
      id: Number(r.id),
      tenant: r.account_id === null ? null : Number(r.account_id),
      actor: JSON.parse(r.actor).account_id as number | null,
    }));
    // alice's own write (its tenant the actor's), and the seed's write to account A (no actor's tenant)
    const own = tenants.find((t) => t.tenant === 1 && t.actor === 1)!;
    const seeded = tenants.find((t) => t.tenant === 1 && t.actor === null)!;
    for (const [entry, moved] of [
      [own, 2],
      [seeded, null],
      [seeded, 2],
    ] as const) {
      await byHand(["update citadel_audit set account_id = ? where id = ?", moved, entry.id]);
      expect(await verify()).toEqual({
        ok: false,
        entries: entry.id - 1,
        broken: { id: entry.id, problem: "was altered" },
      });
      await byHand(["update citadel_audit set account_id = ? where id = ?", entry.tenant, entry.id]);
    }
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("an entry written by hand beyond the chain's head: verify names it, though the walk stops at the head", async () => {
    const row = await stored(last);
    const forged = 1e12;
    await byHand(
      reinsert({
        ...row,
        id: forged,
        action: "data.delete",
        reason: "forged",
        prev_hash: row.hash,
        hash: "f".repeat(64),
      }),
    );
    expect(await verify()).toEqual({
      ok: false,
      entries: last,
      broken: { id: forged, problem: "lies beyond the chain's head" },
    });
    await byHand(["delete from citadel_audit where id = ?", forged]);
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("the oldest entries erased and a prune receipt planted beyond the head: named as missing, the receipt not taken", async () => {
    const oldest = await server.rows("select * from citadel_audit where id <= 3 order by id");
    const receipt = 9e15;
    await byHand(
      ["delete from citadel_audit where id <= ?", 3],
      reinsert({
        ...oldest[2]!,
        id: receipt,
        action: "audit.prune",
        entity: "citadel_audit",
        row_id: 3,
        changes: JSON.stringify({ hash: [oldest[2]!.hash, null] }),
        reason: "removed 3 entries",
        prev_hash: "0".repeat(64),
        hash: "0".repeat(64),
      }),
    );
    expect(await verify()).toMatchObject({
      ok: false,
      entries: 0,
      broken: { id: 3, problem: "is missing (removed without `citadel audit prune`)" },
    });
    await byHand(["delete from citadel_audit where id = ?", receipt], ...oldest.map(reinsert));
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("the last entries deleted: the chain's head tells, naming the first one removed", async () => {
    const all = await server.rows("select * from citadel_audit order by id");
    await byHand(["delete from citadel_audit where id >= ?", last - 1]);
    expect(await verify()).toEqual({
      ok: false,
      entries: last - 2,
      broken: { id: last - 1, problem: "is missing (entries after it were removed)" },
    });
    await byHand(["delete from citadel_audit"]);
    expect(await verify()).toEqual({
      ok: false,
      entries: 0,
      broken: { id: last, problem: "is missing (the trail is empty)" },
    });
    await byHand(...all.map(reinsert));
    expect(await verify()).toEqual({ ok: true, entries: last });
  });

  it("prune removes the entries older than retention_days, records its own entry, and the chain holds (7.3)", async () => {
    const record = (reason: string) => server.app.audit!.record({ action: "access.denied", actor: NO_ACTOR, reason });
    for (const n of [1, 2]) await record(`old ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const cut = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const n of [4, 5]) await record(`new ${n}`);
    expect(await verify()).toEqual({ ok: true, entries: last + 4 });
    const old = last + 2;
    const before = new Date(cut).toISOString();

    // 30 days after the cut, the retention reaches back to it: every entry written before it goes
    expect(await server.app.audit!.prune(NO_ACTOR, cut + 30 * DAY)).toEqual({ removed: old, before });
    const left = await server.rows("select id, action, reason, actor from citadel_audit order by id");
    expect(left.map(({ actor, ...row }) => ({ ...row, actor: JSON.parse(actor) }))).toEqual([
      { id: old + 1, action: "access.denied", reason: "new 4", actor: NO_ACTOR },
      { id: old + 2, action: "access.denied", reason: "new 5", actor: NO_ACTOR },
      {
        id: old + 3,
        action: "audit.prune",
        reason: `removed ${old} entries older than ${before} (through #${old})`,
        actor: NO_ACTOR,
      },
    ]);
    expect(await verify()).toEqual({ ok: true, entries: 3, prunedBefore: old + 1 });
    // DELETE is refused again once prune's transaction is over
    await expect(server.rows("delete from citadel_audit where id = ?", old + 1)).rejects.toThrow(/append-only/);

    // nothing older left: a prune now removes none, and says so in its own entry
    expect(await server.app.audit!.prune(NO_ACTOR)).toMatchObject({ removed: 0 });
    const [entry] = await server.rows("select action, reason from citadel_audit where id = ?", old + 4);
    expect(entry).toEqual({ action: "audit.prune", reason: expect.stringMatching(/^removed 0 entries older than /) });
    expect(await verify()).toEqual({ ok: true, entries: 4, prunedBefore: old + 1 });
  });
});
