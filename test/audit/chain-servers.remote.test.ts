/**
 * The audit trail's hash chain (7.3) written by three servers on one database at once stays one chain. It runs on
 * the server engines only (a .remote test): several servers share a SQLite file only as separate processes, and
 * inside one a writer waiting on the file's lock (busy_timeout) blocks the event loop the lock's holder needs.
 */
import type { CitadelConfig } from "citadel";
import { type ServerHandle, serve } from "citadel/adapter/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";

const config = (): CitadelConfig => tenancyConfig({ audit: { enabled: true, retention_days: 30 } });

/** A second or third server on the first one's database (startServer would give each a database of its own). */
async function alongside(first: TestServer) {
  const handle = serve({ connection: first.connection, config: config(), port: 0, hostname: "127.0.0.1", quiet: true });
  await handle.ready;
  return handle;
}

describe("three servers writing at once keep one chain (7.3, 11.4)", () => {
  let first: TestServer;
  const others: ServerHandle[] = [];
  let urls: string[] = [];

  beforeAll(async () => {
    first = await startServer(config(), { options: { seed: seedTenants } });
    // one after the other: this is about writing at once, not starting at once
    for (let i = 0; i < 2; i++) others.push(await alongside(first));
    urls = [first.url, ...others.map((h) => h.url)];
  });
  afterAll(async () => {
    await Promise.all(others.map((h) => h.close()));
    await first?.close();
  });

  const send = async (url: string, method: string, path: string, body: unknown, headers: Record<string, string>) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Row };
  };

  it("logins, creates and updates spread over three servers: one entry each, and the chain verifies", async () => {
    const before = Number((await first.rows("select count(*) as n from citadel_audit"))[0]!.n);
    const people = ["alice@a.test", "bob@a.test", "carol@b.test"];
    // every person logs in on every server, all at once
    const sessions = await Promise.all(
      urls.flatMap((url) =>
        people.map(async (email) => {
          const res = await send(url, "POST", "/api/auth/password/login", { email, password: PASSWORD }, {});
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          return { url, email, auth: bearer(res.body.token as string) };
        }),
      ),
    );
    // every session creates notes, all at once
    const created = await Promise.all(
      sessions.flatMap((session, s) =>
        [1, 2].map(async (n) => {
          const res = await send(session.url, "POST", "/api/data/notes", { title: `note ${s}.${n}` }, session.auth);
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          return { session, id: res.body.data.id as number };
        }),
      ),
    );
    // and each note is updated by its author through the next server, all at once
    await Promise.all(
      created.map(async ({ session, id }) => {
        const url = urls[(urls.indexOf(session.url) + 1) % urls.length]!;
        const res = await send(url, "PATCH", `/api/data/notes/${id}`, { title: `note ${id}, edited` }, session.auth);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
      }),
    );

    const made = sessions.length + created.length * 2;
    const total = Number((await first.rows("select count(*) as n from citadel_audit"))[0]!.n);
    expect(total - before).toBe(made);
    expect(await first.app.audit!.verify()).toEqual({ ok: true, entries: total });
    const [head] = await first.rows("select seq from citadel_audit_head");
    expect(Number(head!.seq)).toBe(total);
    // one create and one update entry per note, none lost or doubled
    const data = await first.rows(
      "select action, row_id from citadel_audit where entity = 'notes' and id > ? order by row_id, id",
      before,
    );
    const ids = created.map((c) => c.id).sort((a, b) => a - b);
    expect(data).toEqual(
      ids.flatMap((id) => [
        { action: "data.create", row_id: id },
        { action: "data.update", row_id: id },
      ]),
    );
  });
});
