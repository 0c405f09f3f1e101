/**
 * The app every security test attacks: owned projects with an omitted `budget` and a `.hidden()` secret, tasks,
 * tags (many-to-many), notes nobody but admins may read, and roles that exercise filters, fields and denies.
 * Fresh databases number rows from 1, so the ids below are fixed.
 */
import { boolean, type CreateAppInput, em, entity, json, number, relation, text } from "citadel";
import { expect } from "vitest";
import type { TestResponse } from "../helpers/server.js";

export const schema = em(
  {
    projects: entity("projects", {
      name: text().required(),
      budget: number(),
      public: boolean().default(false),
      secret: text().hidden(),
      meta: json(),
    }),
    tasks: entity("tasks", { title: text().required(), done: boolean().default(false) }),
    tags: entity("tags", { name: text().required() }),
    notes: entity("notes", { body: text().required() }),
    users: entity("users", { nickname: text() }),
  },
  ({ projects, tasks, tags, notes, users }) => [
    relation(projects, "owner").manyToOne(users),
    relation(tasks, "project").manyToOne(projects),
    relation(tasks, "owner").manyToOne(users),
    relation(projects, "tags").manyToMany(tags),
    relation(notes, "project").manyToOne(projects),
  ],
);

const own = { owner_id: "@user.id" };

export const securityApp: CreateAppInput = {
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "member",
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              policies: [
                { condition: { entity: "projects" }, effect: "filter", filter: { public: true }, omit: ["budget"] },
                { condition: { entity: "tasks" }, effect: "filter", filter: { done: true } },
                { condition: { entity: "tags" }, effect: "allow" },
              ],
            },
          ],
        },
        member: {
          permissions: [
            {
              permission: "data.entity.read",
              policies: [
                {
                  condition: { entity: "projects" },
                  effect: "filter",
                  filter: { $or: [{ public: true }, own] },
                  omit: ["budget"],
                },
                { condition: { entity: "tasks" }, effect: "filter", filter: own },
                { condition: { entity: "tags" }, effect: "allow" },
                { condition: { entity: "users" }, effect: "filter", filter: { id: "@user.id" } },
              ],
            },
            {
              permission: "data.entity.create",
              policies: [{ condition: { entity: { $in: ["projects", "tasks"] } }, effect: "filter", filter: own }],
            },
            {
              permission: "data.entity.update",
              policies: [
                { condition: { entity: { $in: ["projects", "tasks"] } }, effect: "filter", filter: own },
                { condition: { entity: "users" }, effect: "filter", filter: { id: "@user.id" } },
              ],
            },
            {
              permission: "data.entity.delete",
              policies: [{ condition: { entity: "tasks" }, effect: "filter", filter: own }],
            },
          ],
        },
        // reads everything but the owner keys, budgets and emails
        viewer: {
          permissions: [
            { permission: "data.entity.read", policies: [{ effect: "allow", omit: ["owner_id", "budget", "email"] }] },
          ],
        },
        // may update and delete notes, but never read them
        blind: {
          permissions: [
            { permission: "data.entity.update", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
            { permission: "data.entity.delete", policies: [{ condition: { entity: "notes" }, effect: "allow" }] },
          ],
        },
        // everything on projects except touching project 1
        keeper: {
          permissions: [
            "data.entity.read",
            {
              permission: "data.entity.update",
              policies: [
                { condition: { entity: "projects", id: 1 }, effect: "deny" },
                { condition: { entity: "projects" }, effect: "allow" },
              ],
            },
            {
              permission: "data.entity.delete",
              policies: [
                { condition: { entity: "projects", id: 1 }, effect: "deny" },
                { condition: { entity: "projects" }, effect: "allow" },
              ],
            },
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};

/** Seeded users (ids 1..6 in this order). */
export const USERS = { alice: "member", bob: "member", vic: "viewer", blind: "blind", keeper: "keeper", root: "admin" };
export const ID = { alice: 1, bob: 2, vic: 3, blind: 4, keeper: 5, root: 6 } as const;

/**
 * projects: 1 Alice public, 2 Alice private, 3 Bob private, 4 Bob public.
 * tasks: 1 (p1, alice, done), 2 (p3, bob), 3 (p1, bob), 4 (p3, bob, done).
 * tags: 1 red ↔ project 1, 2 blue ↔ project 3. notes: 1 on p1, 2 on p3.
 */
export const P = { alicePublic: 1, alicePrivate: 2, bobPrivate: 3, bobPublic: 4 } as const;

// biome-ignore lint/suspicious/noExplicitAny: the seed context's database is untyped
export async function seedRows(ctx: { app: any; db: any }, ids: Record<string, number>): Promise<void> {
  const create = ctx.app.module.data.create;
  await create("projects", [
    { name: "Alice public", budget: 100, public: true, owner_id: ids.alice, meta: { k: 1 } },
    { name: "Alice private", budget: 200, public: false, owner_id: ids.alice },
    { name: "Bob private", budget: 300, public: false, owner_id: ids.bob },
    { name: "Bob public", budget: 400, public: true, owner_id: ids.bob },
  ]);
  await ctx.db.updateTable("projects").set({ secret: "TOPSECRET" }).execute();
  await create("tasks", [
    { title: "A1", project_id: 1, owner_id: ids.alice, done: true },
    { title: "B-secret", project_id: 3, owner_id: ids.bob },
    { title: "B on A", project_id: 1, owner_id: ids.bob },
    { title: "B done", project_id: 3, owner_id: ids.bob, done: true },
  ]);
  await create("tags", [{ name: "red" }, { name: "blue" }]);
  await ctx.db
    .insertInto("projects_tags")
    .values([
      { projects_id: 1, tags_id: 1 },
      { projects_id: 3, tags_id: 2 },
    ])
    .execute();
  await create("notes", [
    { body: "note on Alice public", project_id: 1 },
    { body: "note B confidential", project_id: 3 },
  ]);
}

export const BOOT = { users: USERS, rows: seedRows };

/** Anything that must never appear in a low-privilege answer. */
export const SECRETS = ["TOPSECRET", "Bob private", "B-secret", "note B", "password_hash", "$argon2", "token_version"];

export function expectNoSecrets(res: TestResponse, secrets: string[] = SECRETS) {
  for (const s of secrets) expect(res.text, `leaked ${s}`).not.toContain(s);
}

/** The exact 404 body of a row that does not exist (§4.10). */
export const NOT_FOUND = JSON.stringify({ error: { code: "not_found", message: "not found" } });

export const ids = (res: TestResponse): number[] =>
  ((res.body?.data ?? []) as { id: number }[]).map((r) => r.id).sort((a, b) => a - b);
