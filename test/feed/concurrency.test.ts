/**
 * Concurrent writers with the outbox and the audit trail on (§8.1, §7.2, §11.4): every transaction queues on
 * their head rows, and no write may deadlock on them. On PostgreSQL a child's deferred foreign-key check at
 * commit took a key-share lock on its parent after the head lock, while an update of that parent held the
 * parent and waited for the head: half of such requests were 503 (deadlock detected).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

describe("concurrent writers and the feed's and trail's heads (8.1, 7.2, 11.4)", () => {
  let server: TestServer;
  let alice: Record<string, string>;

  beforeAll(async () => {
    server = await startServer(tenancyConfig({ audit: { enabled: true } }), { options: { seed: seedTenants } });
    alice = bearer(await login(server, "alice@a.test", PASSWORD));
  });
  afterAll(() => server?.close());

  it("children of a row and updates of that row, all at once: every request succeeds, every row is an event", async () => {
    const before = Number((await server.rows("select max(seq) as seq from citadel_outbox"))[0]!.seq);
    const requests = Array.from({ length: 60 }, (_, i) =>
      i % 2 === 0
        ? server.request("POST", "/api/data/comments", { body: `c${i}`, note_id: 1 }, alice)
        : server.request("PATCH", "/api/data/notes/1", { title: `t${i}` }, alice),
    );
    const statuses = (await Promise.all(requests)).map((r) => r.status);
    expect(statuses.filter((s) => s >= 300)).toEqual([]);
    const after = await server.rows("select seq from citadel_outbox where seq > ? order by seq", before);
    // one event per request, numbered without a gap
    expect(after.map((r) => Number(r.seq))).toEqual(Array.from({ length: 60 }, (_, i) => before + 1 + i));
    const verified = await server.app.audit!.verify();
    expect(verified.ok).toBe(true);
  });
});
