/**
 * Per-row field rules in the change feed (§8.2, §9.4): a field whose read rule depends on the row is in an event
 * on the images where the rule holds for the subscriber, decided in SQL when the event is sent, as the row is: a
 * create shows what is readable on the row after, a delete what was readable on the row before, and an update
 * that changes only what is hidden on both images is no event. Subscribers here read `updated_at`, which the
 * server changes on every write: that alone makes no update visible (it would tell when a hidden value changed).
 */
import { boolean, em, entity, number, relation, text } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Booted, boot, guardedApp, type Row } from "../guard/helpers.js";
import { bearer } from "../helpers/auth.js";
import { type FeedEvent, type FeedStream, openFeed } from "../helpers/sse.js";

const schema = em(
  {
    departments: entity("departments", { name: text().required(), open: boolean().default(false) }),
    employees: entity(
      "employees",
      { name: text().required(), salary: number(), note: text(), public: boolean().default(false), bonus: number() },
      {
        field_rules: {
          salary: { read: "@owns_record()" },
          note: { read: "public == true" },
          bonus: { read: "exists(departments, id == outer.department_id and open == true)" },
        },
      },
    ),
    users: entity("users", {}),
  },
  ({ departments, employees, users }) => [
    relation(employees, "user").manyToOne(users, { owner: true }),
    relation(employees, "department").manyToOne(departments),
  ],
);

const roles = {
  user: { permissions: ["data.entity.read", "data.entity.create", "data.entity.update", "data.entity.delete"] },
  // a field-level permission (§4.8): reads employees but their names
  clerk: {
    permissions: [{ permission: "data.entity.read", policies: [{ effect: "allow" as const, omit: ["name"] }] }],
  },
};

const FEED = "/api/data/employees/changes";
const shape = (e: FeedEvent) => [e.event, e.data.record];

describe("the change feed shows a field readable on some rows on the rows where its rule holds (8.2, 9.4)", () => {
  let b: Booted<{ closed: number }>;
  const feeds: FeedStream[] = [];
  const open = async (who: string, headers: Record<string, string> = {}) => {
    const feed = await openFeed(b.server.url, FEED, { ...bearer(b.tokens[who]), ...headers });
    expect(feed.status, JSON.stringify(feed.body)).toBe(200);
    feeds.push(feed);
    return feed;
  };
  const write = async (method: string, path: string, body?: unknown, who = "a") => {
    const res = await b.as(who, method, path, body);
    expect(res.status, res.text).toBeLessThan(300);
    return res.body.data as Row;
  };

  beforeAll(async () => {
    b = await boot(guardedApp(schema, roles, { feed: { poll_ms: 50 } }), {
      users: { a: "user", b: "user", c: "clerk" },
      rows: async (ctx) => {
        const [closed] = (await ctx.app.module.data.create("departments", [{ name: "closed" }])) as Row[];
        return { closed: closed!.id as number };
      },
    });
  });
  afterAll(async () => {
    for (const feed of feeds) feed.close();
    await b?.server.close();
  });

  it("an owner sees its own row's salary in its create, update and delete; another subscriber never does, nor hears the salary change (8.2, 9.4)", async () => {
    const [mine, theirs] = [await open("a"), await open("b")];
    const { id, user_id } = await write("POST", "/api/data/employees", { name: "own", salary: 100 });
    expect(user_id).toBe(b.ids.a);
    await write("PATCH", `/api/data/employees/${id}`, { salary: 200 });
    await write("DELETE", `/api/data/employees/${id}`);
    for (const feed of [mine, theirs]) await feed.until((e) => e.event === "delete" && e.data.id === id, "the delete");
    const row = { id, name: "own", public: false, user_id, department_id: null };
    expect(mine.changes().map(shape)).toEqual([
      ["create", expect.objectContaining({ ...row, salary: 100 })],
      ["update", expect.objectContaining({ ...row, salary: 200 })],
      ["delete", expect.objectContaining({ ...row, salary: 200 })],
    ]);
    // the same events, the same fields: b's messages are not a's, and the salary's change is no event for b
    expect(theirs.changes().map((e) => e.event)).toEqual(["create", "delete"]);
    for (const e of theirs.changes()) {
      expect(e.data.record).toMatchObject(row);
      expect(e.data.record).not.toHaveProperty("salary");
    }
    expect(JSON.stringify(theirs.events)).not.toMatch(/"salary"/);
  });

  it("a field whose rule reads the row's flag shows once the flag is set and no more once it is cleared; a change while hidden sends nothing (8.2, 9.4)", async () => {
    const feed = await open("b");
    const { id } = await write("POST", "/api/data/employees", { name: "flip", note: "hello" });
    await write("PATCH", `/api/data/employees/${id}`, { public: true });
    await write("PATCH", `/api/data/employees/${id}`, { note: "bye" });
    await write("PATCH", `/api/data/employees/${id}`, { public: false });
    await write("PATCH", `/api/data/employees/${id}`, { note: "while hidden" });
    await write("DELETE", `/api/data/employees/${id}`);
    await feed.until((e) => e.event === "delete" && e.data.id === id, "the delete");
    const events = feed.changes().filter((e) => e.data.id === id);
    expect(events.map((e) => [e.event, e.data.record.public, e.data.record.note])).toEqual([
      ["create", false, undefined],
      ["update", true, "hello"],
      ["update", true, "bye"],
      ["update", false, undefined],
      // the note changed while hidden: no update; the delete shows what was readable on the row before
      ["delete", false, undefined],
    ]);
    for (const e of events) if (!e.data.record.public) expect(e.data.record).not.toHaveProperty("note");
    expect(JSON.stringify(feed.events)).not.toContain("while hidden");
  });

  it("an update of a field the role may not read is no event, though updated_at changed; the next one carries it (8.2, 4.8)", async () => {
    const feed = await open("c");
    const { id } = await write("POST", "/api/data/employees", { name: "unnamed" });
    await write("PATCH", `/api/data/employees/${id}`, { name: "renamed" });
    const last = await write("PATCH", `/api/data/employees/${id}`, { public: true });
    await feed.until((e) => e.event === "update" && e.data.id === id, "the update");
    const events = feed.changes().filter((e) => e.data.id === id);
    expect(events.map((e) => [e.event, e.data.record.public])).toEqual([
      ["create", false],
      ["update", true],
    ]);
    expect(events[1]!.data.record.updated_at).toBe(last.updated_at);
    expect(JSON.stringify(feed.events)).not.toContain("named");
  });

  it("a rule that follows a relation is decided on the related row as it is when the event is sent (8.2, 9.4)", async () => {
    const feed = await open("b");
    const dept = b.rows.closed;
    const { id } = await write("POST", "/api/data/employees", { name: "rel", bonus: 5, department_id: dept });
    await write("PATCH", `/api/data/departments/${dept}`, { open: true });
    // the department's change is no event of employees; the next one of the row shows the bonus
    await write("PATCH", `/api/data/employees/${id}`, { name: "rel 2" });
    await write("PATCH", `/api/data/departments/${dept}`, { open: false });
    // hidden before and after, judged against the department as it is now: nothing
    await write("PATCH", `/api/data/employees/${id}`, { bonus: 6 });
    await write("PATCH", `/api/data/employees/${id}`, { name: "rel 3" });
    await feed.until((e) => e.data.record?.name === "rel 3", "the last rename");
    const events = feed.changes().filter((e) => e.data.id === id);
    expect(events.map((e) => [e.event, e.data.record.name, e.data.record.bonus])).toEqual([
      ["create", "rel", undefined],
      ["update", "rel 2", 5],
      ["update", "rel 3", undefined],
    ]);
    expect(events[2]!.data.record).not.toHaveProperty("bonus");
  });

  it("a stream whose field rules follow relations resumes with a reset, never a replay of old rows judged today (8.2, 9.4)", async () => {
    const first = await open("b");
    const { id } = await write("POST", "/api/data/employees", { name: "before the gap" });
    const seen = await first.until((e) => e.data.id === id);
    first.close();
    await write("POST", "/api/data/employees", { name: "in the gap", bonus: 7, department_id: b.rows.closed });
    const again = await open("b", { "last-event-id": seen.id! });
    const reset = await again.until((e) => e.event === "reset");
    expect(reset.data.reason).toMatch(/field rules follow relations/);
    expect(again.changes()).toEqual([]);
  });
});
