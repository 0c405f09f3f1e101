/**
 * One enforcement point (§4.5): every route reads and writes through the caller's scoped accessor, reference
 * routes read the parent's key and links under the parent's read scope, and the trusted module uses the same
 * accessor with open access. Refusals say which kind they are, never naming hidden data (§4.16).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON, type Booted, boot, dbRows } from "../guard/helpers.js";
import { BOOT, expectNoSecrets, ID, NOT_FOUND, P, securityApp } from "./fixture.js";

let b: Booted<void>;
beforeAll(async () => {
  b = await boot(securityApp, BOOT);
});
afterAll(() => b.server.close());

/** The exact 403 body: the kind of refusal in the message, the permission and entity beside it (§4.9). */
const forbidden = (message: string, permission: string, entity: string) =>
  JSON.stringify({ error: { code: "forbidden", message, permission, entity } });

describe("messages that say which refusal (4.16)", () => {
  it.each([
    ["alice", "DELETE", `/api/data/projects/${P.alicePrivate}`, undefined, "member", "delete", "projects"],
    ["alice", "POST", "/api/data/notes", { body: "x" }, "member", "create", "notes"],
    ["alice", "DELETE", "/api/data/notes", { id: 1 }, "member", "delete", "notes"],
    [ANON, "POST", "/api/data/projects", { name: "x" }, "anonymous", "create", "projects"],
    [ANON, "GET", "/api/data/notes", undefined, "anonymous", "read", "notes"],
    ["blind", "GET", "/api/data/notes/1", undefined, "blind", "read", "notes"],
  ])("%s %s %s: role X lacks permission P on E (4.16)", async (who, method, path, body, role, verb, entity) => {
    const res = await b.as(who, method, path, body);
    const permission = `data.entity.${verb}`;
    expect(res.text).toBe(forbidden(`role "${role}" lacks permission ${permission} on ${entity}`, permission, entity));
  });

  it("a deny policy reads as a missing permission and names no config path (4.16)", async () => {
    const res = await b.as("keeper", "PATCH", `/api/data/projects/${P.alicePublic}`, { name: "x" });
    expect(res.text).toBe(
      forbidden('role "keeper" lacks permission data.entity.update on projects', "data.entity.update", "projects"),
    );
    expect(res.text).not.toContain("config");
  });

  it("a readable row the permission's filter excludes: this row is outside what role X may update on E (4.16)", async () => {
    const res = await b.as("alice", "PATCH", `/api/data/projects/${P.bobPublic}`, { name: "pwned" });
    expect(res.text).toBe(
      forbidden('this row is outside what role "member" may update on projects', "data.entity.update", "projects"),
    );
    expectNoSecrets(res);
  });

  it("a row that would leave the filter once written says so, without the values (4.16)", async () => {
    const before = await dbRows(b.server, "SELECT * FROM projects ORDER BY id");
    const update = await b.as("alice", "PATCH", `/api/data/projects/${P.alicePrivate}`, { owner_id: ID.bob });
    expect(update.text).toBe(
      forbidden(
        'the row as written would be outside what role "member" may update on projects',
        "data.entity.update",
        "projects",
      ),
    );
    const create = await b.as("alice", "POST", "/api/data/tasks", { title: "planted", owner_id: ID.bob });
    expect(create.text).toBe(
      forbidden(
        'the row as written would be outside what role "member" may create on tasks',
        "data.entity.create",
        "tasks",
      ),
    );
    expect(await dbRows(b.server, "SELECT * FROM projects ORDER BY id")).toEqual(before);
  });

  it("a field the permission does not cover: you may not write field F (4.16)", async () => {
    const one = await b.as("alice", "PATCH", `/api/data/users/${ID.alice}`, { nickname: "al", role: "admin" });
    expect(one.text).toBe(forbidden("you may not write field role", "data.entity.update", "users"));
    const many = await b.as("alice", "PATCH", "/api/data/users", {
      update: { role: "admin", token_version: 0 },
      where: { id: ID.alice },
    });
    expect(many.text).toBe(forbidden("you may not write fields role, token_version", "data.entity.update", "users"));
  });

  it("a hidden row is still a 404 that says nothing, on update and delete alike (4.10, 4.16)", async () => {
    const update = await b.as("alice", "PATCH", `/api/data/projects/${P.bobPrivate}`, { name: "x" });
    expect(update.text).toBe(NOT_FOUND);
    const remove = await b.as("alice", "DELETE", "/api/data/tasks/2");
    expect(remove.text).toBe(NOT_FOUND);
  });
});

describe("reference routes read the parent under its read scope (4.5)", () => {
  it.each([
    ["tasks", "remote key"],
    ["owner", "local key"],
    ["tags", "junction"],
  ])("a hidden parent's %s (%s) is a 404 byte-identical to a missing parent's", async (relation) => {
    for (const prefix of ["/api/data", "/api/data/entity"]) {
      const hidden = await b.as("alice", "GET", `${prefix}/projects/${P.bobPrivate}/${relation}`);
      const missing = await b.as("alice", "GET", `${prefix}/projects/999/${relation}`);
      expect(hidden.text).toBe(NOT_FOUND);
      expect(missing.text).toBe(NOT_FOUND);
    }
  });

  it.each([
    ["tasks", [1]],
    ["owner", [ID.alice]],
    ["tags", [1]],
  ])("a readable parent's %s are listed under their own read scope", async (relation, expected) => {
    const res = await b.as("alice", "GET", `/api/data/projects/${P.alicePublic}/${relation}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((r: { id: number }) => r.id)).toEqual(expected);
    expect(res.body.meta).toMatchObject({ count: expected.length, total: expected.length });
  });

  it("anonymous: a public parent's links reach only rows anonymous may read", async () => {
    const tasks = await b.as(ANON, "GET", `/api/data/projects/${P.bobPublic}/tasks`);
    expect(tasks.body.data).toEqual([]);
    const hidden = await b.as(ANON, "GET", `/api/data/projects/${P.bobPrivate}/tags`);
    expect(hidden.text).toBe(NOT_FOUND);
  });
});

describe("the trusted module uses the same accessor, with open access", () => {
  it("lists every row and creates rows with links, as the guard would for a trusted caller", async () => {
    const data = b.server.app.module.data;
    const all = await data.list("projects");
    expect(all.map((p) => p.id)).toEqual([1, 2, 3, 4]);
    expect(all[0]).toHaveProperty("budget", 100);
    expect(all[0]).not.toHaveProperty("secret");
    const filtered = await data.list("projects", { owner_id: ID.bob });
    expect(filtered.map((p) => p.id)).toEqual([P.bobPrivate, P.bobPublic]);
    const created = (await data.create("tasks", { title: "trusted", project_id: P.bobPrivate })) as { id: number };
    expect(await dbRows(b.server, "SELECT project_id FROM tasks WHERE id = ?", created.id)).toEqual([
      { project_id: P.bobPrivate },
    ]);
    await expect(data.create("tasks", { title: "dangling", project_id: 999 })).rejects.toThrow(/break a reference/);
    await b.as("root", "DELETE", `/api/data/tasks/${created.id}`);
  });
});
