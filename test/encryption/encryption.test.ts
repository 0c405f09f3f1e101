/**
 * Field encryption at rest (§10) over HTTP on the engine under test: what the API answers is plaintext, what
 * the tables, the audit trail and the outbox hold is ciphertext; a tampered value is an error, never garbage;
 * where/sort refuse encrypted fields except equality on searchable ones, through every path a where takes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestServer } from "../helpers/server.js";
import { openFeed } from "../helpers/sse.js";
import { encryptionConfig, newKey, STORED } from "./fixture.js";

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
const CHART = { allergies: ["penicillin"], weight: 71.5 };

describe("encryption at rest (10)", () => {
  let server: TestServer;
  const logs: string[] = [];
  /** the messages logged with an error (its stack): what is unexpected */
  const withError: string[] = [];
  const key1 = newKey("k1");

  const create = async (row: Row, entity = "patients") => {
    const res = await server.request("POST", `/api/data/${entity}`, row);
    expect(res.status, res.text).toBe(201);
    return res.body.data;
  };
  const list = async (entity: string, params: string) => server.request("GET", `/api/data/${entity}?${params}`);

  beforeAll(async () => {
    server = await startServer(encryptionConfig(), {
      options: {
        encryptionKeys: key1,
        log: (message, error) => {
          if (error === undefined) return logs.push(message);
          logs.push(`${message} ${error instanceof Error ? error.message : error}`);
          withError.push(message);
        },
      },
    });
  });
  afterAll(() => server?.close());

  it("round trips text and json through create, read, list, update and with; the table holds ciphertext (10.1)", async () => {
    const created = await create({ name: "Ann", ssn: "123-45-6789", notes: "allergic", chart: CHART });
    expect(created).toMatchObject({ name: "Ann", ssn: "123-45-6789", notes: "allergic", chart: CHART });
    expect(created).not.toHaveProperty("ssn__bidx");
    const id = created.id;
    const one = await server.request("GET", `/api/data/patients/${id}`);
    expect(one.body.data).toMatchObject({ ssn: "123-45-6789", notes: "allergic", chart: CHART });
    expect(Object.keys(one.body.data)).not.toContain("ssn__bidx");

    const [stored] = await server.rows("select ssn, notes, chart, ssn__bidx from patients where id = ?", id);
    for (const column of ["ssn", "notes", "chart"]) expect(stored![column]).toMatch(STORED);
    expect(stored!.ssn.match(STORED)![1]).toBe("k1");
    expect(JSON.stringify(stored)).not.toContain("123-45-6789");
    expect(JSON.stringify(stored)).not.toContain("allergic");
    expect(JSON.stringify(stored)).not.toContain("penicillin");
    expect(stored!.ssn__bidx).toMatch(/^k1:[A-Za-z0-9+/]{43}=$/);

    const updated = await server.request("PATCH", `/api/data/patients/${id}`, { notes: "not allergic", chart: null });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.data).toMatchObject({ ssn: "123-45-6789", notes: "not allergic", chart: null });
    const [after] = await server.rows("select notes, chart from patients where id = ?", id);
    expect(after!.notes).toMatch(STORED);
    expect(after!.chart).toBeNull();

    const visit = await create({ reason: "checkup", room: "3", patient_id: id }, "visits");
    expect(visit.reason).toBe("checkup");
    const withPatient = await list("visits", `where=${q({ id: visit.id })}&with=patient`);
    expect(withPatient.body.data[0].patient).toMatchObject({ ssn: "123-45-6789", notes: "not allergic" });
    const reference = await server.request("GET", `/api/data/patients/${id}/visits`);
    expect(reference.status, reference.text).toBe(200);
    expect(reference.body.data[0].reason).toBe("checkup");
    const viaQuery = await server.request("POST", "/api/data/patients/query", { where: { id }, select: ["notes"] });
    expect(viaQuery.body.data).toEqual([{ notes: "not allergic" }]);
  });

  it("creates many and updates many encrypt every row; equal plaintexts differ in storage (10.1)", async () => {
    const rows = await server.request("POST", "/api/data/patients", [
      { name: "Twin A", ssn: "same", notes: "same" },
      { name: "Twin B", ssn: "same", notes: "same" },
    ]);
    expect(rows.status, rows.text).toBe(201);
    const ids = rows.body.data.map((r: Row) => r.id);
    const many = await server.request("PATCH", "/api/data/patients", {
      update: { notes: "twins" },
      where: { id: { $in: ids } },
    });
    expect(many.status, many.text).toBe(200);
    expect(many.body.data.map((r: Row) => r.notes)).toEqual(["twins", "twins"]);
    const stored = await server.rows("select ssn, notes from patients where id in (?, ?) order by id", ...ids);
    expect(stored[0]!.ssn).not.toBe(stored[1]!.ssn);
    expect(stored[0]!.notes).not.toBe(stored[1]!.notes);
    for (const r of stored) expect(r.notes).toMatch(STORED);
  });

  it("$eq and $in on a searchable field find rows through the blind index (10.3)", async () => {
    await create({ name: "Sam", ssn: "999-00-1111" });
    await create({ name: "Kim", ssn: "999-00-2222" });
    const eq = await list("patients", `where=${q({ ssn: "999-00-1111" })}`);
    expect(eq.status, eq.text).toBe(200);
    expect(eq.body.data.map((r: Row) => r.name)).toEqual(["Sam"]);
    const inList = await list("patients", `where=${q({ ssn: { $in: ["999-00-1111", "999-00-2222", "nope"] } })}`);
    expect(inList.body.data.map((r: Row) => r.name).sort()).toEqual(["Kim", "Sam"]);
    const count = await server.request("GET", `/api/data/patients/count?where=${q({ ssn: "999-00-2222" })}`);
    expect(count.body.data.count).toBe(1);
    const exists = await server.request("POST", "/api/data/entity/patients/fn/exists", { ssn: "999-00-2222" });
    expect(exists.body).toMatchObject({ exists: true });
    const viaRelation = await list("visits", `where=${q({ patient: { ssn: "123-45-6789" } })}`);
    expect(viaRelation.status, viaRelation.text).toBe(200);
    expect(viaRelation.body.data.map((r: Row) => r.reason)).toEqual(["checkup"]);
    const nulls = await list("patients", `where=${q({ ssn: null, name: "Twin A" })}`);
    expect(nulls.body.data).toEqual([]);
  });

  const refusals: [string, string, string][] = [
    ["$like on a searchable field", "patients", `where=${q({ ssn: { $like: "999*" } })}`],
    ["$gt on a searchable field", "patients", `where=${q({ ssn: { $gt: "1" } })}`],
    ["$ne on a searchable field", "patients", `where=${q({ ssn: { $ne: "999-00-1111" } })}`],
    ["$nin on a searchable field", "patients", `where=${q({ ssn: { $nin: ["999-00-1111"] } })}`],
    ["a non-searchable field", "patients", `where=${q({ notes: "allergic" })}`],
    ["$isnull on a non-searchable field", "patients", `where=${q({ notes: { $isnull: true } })}`],
    ["a json field", "patients", `where=${q({ chart: { $isnull: false } })}`],
    ["sort by an encrypted field", "patients", "sort=-ssn"],
    ["sort by a non-searchable field", "patients", `sort=${q({ by: "notes", dir: "asc" })}`],
    ["a relation path into an encrypted field", "visits", `where=${q({ "patient.notes": "allergic" })}`],
    ["$some into an encrypted field", "patients", `where=${q({ visits: { $some: { reason: "checkup" } } })}`],
    [
      "$exists into an encrypted field",
      "visits",
      `where=${q({ $exists: { entity: "patients", where: { notes: "x" } } })}`,
    ],
    ["a with's where on an encrypted field", "patients", `with=${q({ visits: { where: { reason: "checkup" } } })}`],
    ["a with's sort on an encrypted field", "patients", `with=${q({ visits: { sort: "reason" } })}`],
  ];
  for (const [what, entity, params] of refusals)
    it(`refuses ${what} with 400 naming the field (10.3)`, async () => {
      const res = await list(entity, params);
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe("bad_request");
      expect(res.body.error.message).toMatch(/"(ssn|notes|chart|reason)" is encrypted/);
    });

  it("refuses encrypted fields in count, exists and update/delete-many wheres too (10.3)", async () => {
    const count = await server.request("GET", `/api/data/patients/count?where=${q({ notes: "allergic" })}`);
    expect(count.status).toBe(400);
    const exists = await server.request("POST", "/api/data/entity/patients/fn/exists", { notes: "x" });
    expect(exists.status).toBe(400);
    const update = await server.request("PATCH", "/api/data/patients", {
      update: { name: "x" },
      where: { notes: "x" },
    });
    expect(update.status).toBe(400);
    const remove = await server.request("DELETE", "/api/data/patients", { chart: { $isnull: true } });
    expect(remove.status).toBe(400);
    expect((await server.rows("select count(*) as n from patients where name = 'x'"))[0]!.n).toBe(0);
  });

  it("the blind index column is hidden: not readable, selectable, filterable or writable (10.3)", async () => {
    expect((await list("patients", "select=ssn__bidx")).status).toBe(400);
    expect((await list("patients", `where=${q({ ssn__bidx: "x" })}`)).status).toBe(400);
    const write = await server.request("POST", "/api/data/patients", { name: "x", ssn__bidx: "k1:forged" });
    expect(write.status).toBe(400);
  });

  it("a tampered value is a 409 naming the field, never garbage or a 500, and is logged (10.1)", async () => {
    const { id } = await create({ name: "Tampered", notes: "original", ssn: "555" });
    const [row] = await server.rows("select notes from patients where id = ?", id);
    const stored = row!.notes as string;
    // flip one bit of the ciphertext (the last base64 character before any padding is part of the tag)
    const body = Buffer.from(stored.split(":")[3]!, "base64");
    body[20] = body[20]! ^ 1;
    const tampered = `enc:v1:k1:${body.toString("base64")}`;
    await server.rows("update patients set notes = ? where id = ?", tampered, id);
    const logged = logs.length;
    const read = await server.request("GET", `/api/data/patients/${id}`);
    expect(read.status, read.text).toBe(409);
    expect(read.body.error).toMatchObject({ code: "conflict", entity: "patients", field: "notes", id });
    expect(read.text).not.toContain("original");
    expect(read.text).not.toContain(tampered);
    // an expected condition: one line naming the entity, field and row, with the reason; no stack, value or key
    const lines = logs.slice(logged);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^a stored value of patients\\.notes \\(row ${id}\\) cannot be decrypted: .+$`),
    );
    expect(lines[0]).not.toContain(tampered.slice(10));
    expect(lines[0]).not.toContain(key1.split(":")[1]!);
    expect(withError).toEqual([]);
    // a value moved from another column fails its tag as well (entity and field are authenticated)
    const [other] = await server.rows("select ssn from patients where id = ?", id);
    await server.rows("update patients set notes = ? where id = ?", other!.ssn, id);
    expect((await server.request("GET", `/api/data/patients/${id}`)).status).toBe(409);
    // plaintext written behind Citadel's back is not served either
    await server.rows("update patients set notes = ? where id = ?", "plain text", id);
    const plain = await list("patients", `where=${q({ id })}`);
    expect(plain.status).toBe(409);
    expect(plain.text).not.toContain("plain text");
    // a delete answers the deleted row: it is refused as a whole (the row stays) ...
    await server.rows("update patients set notes = ? where id = ?", tampered, id);
    expect((await server.request("DELETE", `/api/data/patients/${id}`)).status).toBe(409);
    expect(await server.rows("select id from patients where id = ?", id)).toHaveLength(1);
    // ... until the value is written again, which needs no decryption of the old one
    const repaired = await server.request("PATCH", `/api/data/patients/${id}`, { notes: "repaired" });
    expect(repaired.status, repaired.text).toBe(200);
    expect(repaired.body.data.notes).toBe("repaired");
    expect((await server.request("DELETE", `/api/data/patients/${id}`)).status).toBe(200);
  });

  it("the audit trail records encrypted fields as [redacted], null included, and never the blind index (10.1, 7.1)", async () => {
    const { id } = await create({ name: "Audited", ssn: "audit-ssn-1", notes: "audit-note-1", chart: { x: 1 } });
    await server.request("PATCH", `/api/data/patients/${id}`, { notes: "audit-note-2" });
    await server.request("PATCH", `/api/data/patients/${id}`, { chart: null });
    const entries = await server.rows(
      "select changes from citadel_audit where entity = 'patients' and row_id = ? order by id",
      id,
    );
    expect(entries.length).toBe(3);
    const [created, updated, cleared] = entries.map((e) => JSON.parse(e.changes as string));
    expect(created).toMatchObject({
      name: [null, "Audited"],
      ssn: [null, "[redacted]"],
      notes: [null, "[redacted]"],
      chart: [null, "[redacted]"],
    });
    expect(created).not.toHaveProperty("ssn__bidx");
    expect(updated).toEqual({ notes: ["[redacted]", "[redacted]"] });
    // the value cleared: a null after would tell that the chart is now empty
    expect(cleared).toEqual({ chart: ["[redacted]", "[redacted]"] });
    const all = JSON.stringify(await server.rows("select * from citadel_audit"));
    for (const plain of ["audit-ssn-1", "audit-note-1", "audit-note-2", "123-45-6789"])
      expect(all).not.toContain(plain);
  });

  it("the outbox holds ciphertext; the change feed sends plaintext, and filters on the blind index (10.1, 8.2)", async () => {
    const feed = await openFeed(server.url, `/api/data/patients/changes?where=${q({ ssn: "feed-ssn" })}`);
    expect(feed.status, JSON.stringify(feed.body)).toBe(200);
    await create({ name: "Other", ssn: "other-ssn", notes: "feed-other" });
    const { id } = await create({ name: "Fed", ssn: "feed-ssn", notes: "feed-note", chart: { feed: true } });
    const event = await feed.until((e) => e.event === "create" && e.data.id === id);
    feed.close();
    expect(event.data.record).toMatchObject({ ssn: "feed-ssn", notes: "feed-note", chart: { feed: true } });
    expect(event.data.record).not.toHaveProperty("ssn__bidx");
    expect(feed.changes().map((e) => e.data.id)).toEqual([id]);
    const outbox = JSON.stringify(await server.rows("select * from citadel_outbox where entity = 'patients'"));
    for (const plain of ["feed-ssn", "feed-note", "feed-other", "123-45-6789", "allergic"])
      expect(outbox).not.toContain(plain);
    expect(outbox).toContain("enc:v1:k1:");
  });

  it("no encrypted value reaches the log (10.1)", () => {
    const text = logs.join("\n");
    for (const plain of ["123-45-6789", "allergic", "penicillin", "feed-note", "original"])
      expect(text).not.toContain(plain);
    expect(text).not.toContain(key1.split(":")[1]!);
  });
});

/**
 * The change feed decrypts only the fields a stream shows (§10, §8.2): a value failing its integrity check keeps
 * an event from the streams that would show it (logged), not from those that cannot read the field.
 */
describe("a tampered value in a change-feed event (10.1, 8.2)", () => {
  let server: TestServer;
  const logs: string[] = [];
  const PASSWORD = "encryption-feed-password";

  beforeAll(async () => {
    const config = encryptionConfig({
      auth: {
        enabled: true,
        password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
        roles: {
          clerk: {
            permissions: [
              { permission: "data.entity.read", policies: [{ effect: "allow", omit: ["notes"] }] },
              "data.entity.update",
            ],
          },
          doctor: { permissions: ["data.entity.read"] },
        },
      },
    });
    server = await startServer(config, {
      options: {
        encryptionKeys: newKey("k1"),
        log: (message, error) => logs.push(`${message} ${error instanceof Error ? error.message : (error ?? "")}`),
        seed: async (ctx) => {
          await ctx.app.module.auth.createUser({ email: "clerk@test.com", password: PASSWORD, role: "clerk" });
          await ctx.app.module.auth.createUser({ email: "doctor@test.com", password: PASSWORD, role: "doctor" });
        },
      },
    });
  });
  afterAll(() => server?.close());

  it("reaches the streams that do not show the field, and not those that would", async () => {
    const clerk = bearer(await login(server, "clerk@test.com", PASSWORD));
    const doctor = bearer(await login(server, "doctor@test.com", PASSWORD));
    const data = server.app.module.data;
    const { id } = (await data.create("patients", { name: "Pat", notes: "private" })) as Row;
    const [row] = await server.rows("select notes from patients where id = ?", id);
    const body = Buffer.from((row!.notes as string).split(":")[3]!, "base64");
    body[20] = body[20]! ^ 1;
    await server.rows("update patients set notes = ? where id = ?", `enc:v1:k1:${body.toString("base64")}`, id);

    const clerkFeed = await openFeed(server.url, "/api/data/patients/changes", clerk);
    const doctorFeed = await openFeed(server.url, "/api/data/patients/changes", doctor);
    expect([clerkFeed.status, doctorFeed.status]).toEqual([200, 200]);
    // the update's images both hold the tampered notes
    const renamed = await server.request("PATCH", `/api/data/patients/${id}`, { name: "Renamed" }, clerk);
    expect(renamed.status, renamed.text).toBe(200);
    const { id: marker } = (await data.create("patients", { name: "Marker", notes: "fine" })) as Row;

    const update = await clerkFeed.until((e) => e.event === "update" && e.data.id === id);
    expect(update.data.record).toMatchObject({ id, name: "Renamed" });
    expect(update.data.record).not.toHaveProperty("notes");
    await clerkFeed.until((e) => e.event === "create" && e.data.id === marker);
    const created = await doctorFeed.until((e) => e.event === "create" && e.data.id === marker);
    expect(created.data.record).toMatchObject({ notes: "fine" });
    clerkFeed.close();
    doctorFeed.close();
    // the doctor would have seen the notes: the update is not sent to that stream, as garbage or at all
    expect(doctorFeed.changes().map((e) => `${e.event} ${e.data.id}`)).toEqual([`create ${marker}`]);
    expect(logs.join("\n")).toMatch(/change feed: event \d+ not sent .*patients\.notes/);
  });
});
