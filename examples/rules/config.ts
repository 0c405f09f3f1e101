/**
 * Space Cloud's "Securing your project" page (`reference/spacecloud-securing-your-project.md`) as a Citadel app:
 * each of its rule kinds — allow, authenticated, deny, match, query, and/or — as one policy with a rule (§9.2).
 *
 * Space Cloud writes its rules per table and operation, not per role, so here every role carries the same list
 * (`rules` below) and the rules themselves tell callers apart: `user.id` is Space Cloud's `args.auth.id`,
 * `user.role` its `args.auth.role`, a field of the row (or of the written row) its `args.doc` / the row found.
 *
 * | table | read | create | update | delete |
 * |---|---|---|---|---|
 * | announcements | allow | match (admin) | match (admin) | match (admin) |
 * | members | authenticated | match (admin) | match (admin) | match (admin), or match (a user leaves: her own row) |
 * | projects | or (match: admin, or query: a member) | match (admin) | match (admin) | match (admin) |
 * | tasks | query (a member of its project) | and (match: the author is the caller, and query: a member) | and (the same, before and after the write) | deny |
 * | users | match (admin: `id` and `email`) | — | — | — |
 *
 * What Citadel does differently, and why:
 * - `allow` grants the operation without a user, but does not switch authentication off: a token that fails
 *   verification is 401 even there (§4.1), where Space Cloud's `allow` would let the request through.
 * - `match` and `query` decide per row, not per request: a list returns the rows where the rule holds (none is an
 *   empty list, not a refusal), a row outside it is 404 to read and 403 to write when it is readable (§4.5).
 *   Space Cloud's `match` on "the where clause" is not needed: Citadel never trusts the caller's where, it ANDs
 *   the rule with it (§4.3a), so a where naming other people's rows reaches none of them.
 * - A rule that compares the caller with a claim they lack (anonymous, a publishable key: no `user.id`) is
 *   UNKNOWN, never NULL = NULL (§4.4, §9.1), so `authenticated` is `user.id != null` and fails for them.
 * - Citadel's own tokens carry `id`, `email` and `role` (and `account_id` under tenancy); claims of your choosing
 *   (the page's "the user is free to decide what claims must go into the JWT token") come from an external
 *   identity provider's tokens (`auth.jwt.jwks`), and are then `user.<claim>` in rules.
 * - The page shows no field-level rule and no `force`/`remove` clause (those are on Space Cloud's database
 *   page). Citadel's field rules (§9.4) hide or refuse fields; nothing in Citadel rewrites a request's values
 *   the way `force`/`remove` do (a rule only allows or refuses), except an owner relation filling its column
 *   on create (§4.14), which this example does not use: `tasks.author_id` is written by the client and
 *   checked by the `and` rule's match.
 * - `users` is Citadel's auth table, not one of the page's: apart from it, a table with no rule is denied. Admins
 *   read its `id` and `email`, because a membership names a user, and a write may name only rows its caller can
 *   read (any other is answered as a missing row, §4.17); everyone else names only themselves.
 */
import { boolean, type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    announcements: entity("announcements", { title: text().required().maxLength(200), body: text() }),
    projects: entity("projects", { name: text().required().maxLength(100) }),
    members: entity("members", {}),
    tasks: entity("tasks", { title: text().required().maxLength(200), done: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ projects, members, tasks, users }) => [
    relation(members, "project").manyToOne(projects, { on_delete: "cascade" }),
    relation(members, "user").manyToOne(users, { on_delete: "cascade" }),
    relation(tasks, "project").manyToOne(projects, { on_delete: "cascade" }),
    // not an owner relation: the client writes author_id, and the `match` rule checks it
    relation(tasks, "author").manyToOne(users),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

/** allow: anyone reads announcements, with a token or without one. */
export const allow = { condition: { entity: "announcements" }, effect: "allow" as const };

/** authenticated: any signed-in user sees who is in which project; nobody without a user does. */
export const authenticated = { condition: { entity: "members" }, effect: "allow" as const, rule: "user.id != null" };

/** deny: nobody deletes a task (whatever the other rules of `data.entity.delete` allow). */
export const deny = { condition: { entity: "tasks" }, effect: "deny" as const };

/** match, on the caller alone (role-based): admins write announcements, projects and memberships. */
export const matchRole = {
  condition: { entity: { $in: ["announcements", "projects", "members"] } },
  effect: "allow" as const,
  rule: "user.role == 'admin'",
};

/** match, on the caller: admins see who there is to add to a project (the users a membership may name, §4.17). */
export const matchUsers = {
  condition: { entity: "users" },
  effect: "allow" as const,
  rule: "user.role == 'admin'",
  fields: ["id", "email"],
};

/** match, on the row and the caller: a user leaves a project, i.e. deletes her own membership and no one else's. */
export const match = { condition: { entity: "members" }, effect: "allow" as const, rule: "user_id == user.id" };

/** query: a task is readable by the members of its project (some row of members says so). */
export const query = {
  condition: { entity: "tasks" },
  effect: "allow" as const,
  rule: "exists(members, project_id == outer.project_id and user_id == user.id)",
};

/**
 * and: a task is written by a member of its project, as themselves (match on the written row, and query). On a
 * `filter` policy the rule holds on the rows a write reaches and on each row as written (§4.6): A can neither
 * create a task as B, nor in a project she is not in, nor move her task there.
 */
export const and = {
  condition: { entity: "tasks" },
  effect: "filter" as const,
  rule: "author_id == user.id and exists(members, project_id == outer.project_id and user_id == user.id)",
};

/** or: a project is readable by admins, or by its members (match, or query). */
export const or = {
  condition: { entity: "projects" },
  effect: "allow" as const,
  rule: "user.role == 'admin' or exists(members, project_id == outer.id and user_id == user.id)",
};

/** The rules of every table and operation, as Space Cloud keeps them: one list, whoever asks. */
export const rules = [
  { permission: READ, policies: [allow, authenticated, or, query, matchUsers] },
  { permission: CREATE, policies: [matchRole, and] },
  { permission: UPDATE, policies: [matchRole, and] },
  { permission: DELETE, policies: [matchRole, match, deny] },
];

export const app: CreateAppInput = {
  connection: { url: process.env.CITADEL_DB ?? "file:rules.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "user",
      api_keys: { enabled: true, publishable_role: "anonymous" },
      roles: {
        anonymous: { is_default: true, permissions: rules },
        user: { permissions: rules },
        // the same rules; `user.role == 'admin'` is what lets an admin further, plus managing API keys
        admin: { permissions: [...rules, "system.keys.manage"] },
      },
    },
  },
};
export default app;
