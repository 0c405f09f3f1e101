/**
 * SnackBase's "Security Model" page (`reference/snackbase-security-model.txt`) as a Citadel app: accounts isolated
 * from each other (§6), the admin / editor / viewer roles of its RBAC hierarchy with its custom `moderator` and its
 * scenario's `author`, the rule expressions it shows (§9.1), its field rules on `salary`, `email`, `ssn` and
 * `author_ip` (§9.4), and the audit trail and monitoring it recommends (§7).
 *
 * | the page | here |
 * |---|---|
 * | Account (AB1001), `account_id` on every row | `tenancy`: the `accounts` table, `account_id` on posts, comments and users, from the token only |
 * | `admin`: all operations on all collections (`"collection": "*"`) | role `admin`: read, create, update, delete with `condition: { entity: "*" }` |
 * | `editor`: create, read, update on posts only; `fields: ["title","content","status"]`; rules create `@has_role('editor')` | role `editor` |
 * | `viewer`: read on posts only; on users `fields: ["name","email"]`, excluded `phone`, `ssn`, `salary` | role `viewer` |
 * | custom role `moderator`: comments read/update/delete, users read; `author_ip: { read: "@has_role('admin')" }` | role `moderator` |
 * | Scenario 1 `author`: update `@owns_record()`, delete `@owns_record() and not status == 'published'` | role `author` |
 * | Scenario 3 `anonymous`: read posts, excluded `draft_notes`, `internal_status` | role `anonymous` (the default role and the publishable keys' role) |
 * | `@is_superadmin()` | role `superadmin`, `tenancy.superadmin_role`: every account |
 * | `hr` (named by salary's write rule) | role `hr`: reads the account's users and updates them |
 * | Audit logging "(coming soon)", "Monitor and Alert" | `audit` on; `/api/system/audit` per account, `/api/system/metrics` |
 *
 * What Citadel writes differently, and why:
 * - The filter of a `filter` policy is both which rows a write reaches and what they must be after it (§4.6). So
 *   the page's update rule `(@owns_record() and status in ['draft','pending']) or @has_role('admin')` lets an editor
 *   move their draft to `pending` but not to `published` (the row after the write would be outside the rule): an
 *   admin publishes it.
 * - `@owns_record()` needs an owner relation (§4.14). Posts and comments have one (`author_id`); a `users` row is its
 *   own user, so the users' field rule `@has_role('admin') or @owns_record()` is written
 *   `@has_role('admin') or id == user.id`.
 * - "Hide sensitive fields by default" (`excluded_fields: ["password_hash","ssn","salary"]`): `password_hash` is
 *   Citadel's own hidden column; `ssn` is read and written by no role of an account (an entity field rule
 *   `@is_superadmin()`, the operator of the platform), `salary` by those its field rules name.
 * - A role's fields allowlist (`"fields": ["title","content","status"]`) is a policy's `fields` on writes; reads
 *   of an editor are not narrowed by it (the page's field visibility is on reads of users, for viewers).
 * - Scenario 3 "public read" inside accounts: a caller without an account (anonymous, no key) sees no row of any
 *   account (§6.2); an account's public pages use a publishable key with that account as its tenant, which acts
 *   as `anonymous` inside the account.
 * - Cross-account `?account_id=XY2048`: the page answers 403 and resets the filter to the caller's account;
 *   Citadel ANDs the caller's account in SQL, so such a `where` only narrows (200, no rows), a row of another
 *   account named by id is 404 (its existence is not revealed), naming `account_id` in a body is 400, and each
 *   attempt is counted (`citadel_cross_tenant_attempts_total`).
 * - "Permissions are cached for 5 minutes": Citadel compiles policies once at startup (a config change is a
 *   restart); a user's role change revokes their older tokens at once (§4.11), there is no 5-minute window.
 * - `author_ip` is a column like any other (the client that wrote it sets it, or server code): Citadel does not
 *   fill it from the request. The audit trail records every writer's address as `actor.ip`.
 */
import { type CreateAppInput, em, entity, enumm, number, relation, text } from "citadel";

export const schema = em(
  {
    posts: entity("posts", {
      title: text().required().maxLength(200),
      content: text().maxLength(100_000),
      status: enumm({ enum: ["draft", "pending", "published", "archived", "locked"] }).default("draft"),
      priority: number(),
      draft_notes: text().maxLength(10_000),
      internal_status: text().maxLength(200),
    }),
    comments: entity("comments", { body: text().required().maxLength(2_000), author_ip: text().maxLength(45) }),
    users: entity(
      "users",
      { name: text().maxLength(80), phone: text().maxLength(40), ssn: text().maxLength(20), salary: number() },
      {
        // the page's `"collection": "users", "field_rules": {…}`: for every role
        field_rules: {
          salary: { read: "@has_role('admin') or id == user.id", write: "@has_role('hr') or @is_superadmin()" },
          email: { read: "true", write: "@has_role('admin')" },
          // "Hide sensitive fields by default": no role of an account reads or writes it
          ssn: { read: "@is_superadmin()", write: "@is_superadmin()" },
        },
      },
    ),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users, { owner: true }),
    relation(comments, "author").manyToOne(users, { owner: true }),
    relation(comments, "post").manyToOne(posts, { on_delete: "cascade" }),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

/** The page's wildcard collection: every entity, present and future (§9.3). */
const everything = { entity: "*" };
const onPosts = { entity: "posts" };
const onComments = { entity: "comments" };
const onUsers = { entity: "users" };

/** "rules": { "update": "(@owns_record() and status in ['draft', 'pending']) or @has_role('admin')" } */
const updatePosts = {
  condition: onPosts,
  effect: "filter" as const,
  rule: "(@owns_record() and status in ['draft', 'pending']) or @has_role('admin')",
};

export const app: CreateAppInput = {
  connection: { url: process.env.CITADEL_DB ?? "file:accounts.db" },
  config: {
    data: schema.toJSON(),
    tenancy: {
      enabled: true,
      entity: "accounts",
      field: "account_id",
      entities: "*",
      // signing up makes an account (AB1001) whose first user is its admin
      register: "create",
      superadmin_role: "superadmin",
    },
    audit: { enabled: true, redact: ["users.ssn", "users.salary"] },
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "admin",
      api_keys: { enabled: true, publishable_role: "anonymous" },
      roles: {
        // @is_superadmin(): the platform's operator, over every account
        superadmin: { implicit_allow: true },
        // "admin: All operations on all collections", with the page's delete rule on posts
        admin: {
          permissions: [
            { permission: READ, policies: [{ condition: everything, effect: "allow" }] },
            { permission: CREATE, policies: [{ condition: everything, effect: "allow" }] },
            { permission: UPDATE, policies: [{ condition: everything, effect: "allow" }, updatePosts] },
            {
              permission: DELETE,
              policies: [
                { condition: everything, effect: "allow" },
                // "delete": "@has_role('admin') and not record.status == 'locked'"
                { condition: onPosts, effect: "filter", rule: "@has_role('admin') and not record.status == 'locked'" },
              ],
            },
            // "Regular Permission Audits ... Use audit logs", "Monitor and Alert": their account's trail
            "system.audit.read",
            "system.explain",
          ],
        },
        // "editor: Create, Read, Update on posts only" (the page's Permission Structure); no delete
        editor: {
          permissions: [
            { permission: READ, policies: [{ condition: onPosts, effect: "allow" }] },
            {
              permission: CREATE,
              policies: [
                {
                  condition: onPosts,
                  effect: "allow",
                  rule: "@has_role('editor')",
                  fields: ["title", "content", "status"],
                },
              ],
            },
            {
              permission: UPDATE,
              policies: [{ ...updatePosts, fields: ["title", "content", "status"] }],
            },
          ],
        },
        // "viewer: Read on posts only"; Field Visibility: users' name and email, not phone, ssn, salary
        viewer: {
          permissions: [
            {
              permission: READ,
              policies: [
                { condition: onPosts, effect: "allow" },
                { condition: onUsers, effect: "allow", fields: ["id", "name", "email"] },
              ],
            },
          ],
        },
        // Custom Roles: "moderator" (comments read/update/delete, users read) and Scenario 2's field rule
        moderator: {
          permissions: [
            {
              permission: READ,
              policies: [
                { condition: onComments, effect: "allow", fields: { author_ip: { read: "@has_role('admin')" } } },
                { condition: onUsers, effect: "allow" },
              ],
            },
            { permission: UPDATE, policies: [{ condition: onComments, effect: "allow" }] },
            { permission: DELETE, policies: [{ condition: onComments, effect: "allow" }] },
          ],
        },
        // Scenario 1: "User Can Only Edit Their Own Posts"
        author: {
          permissions: [
            { permission: READ, policies: [{ condition: onPosts, effect: "allow" }] },
            { permission: CREATE, policies: [{ condition: onPosts, effect: "allow" }] },
            { permission: UPDATE, policies: [{ condition: onPosts, effect: "filter", rule: "@owns_record()" }] },
            {
              permission: DELETE,
              policies: [
                { condition: onPosts, effect: "filter", rule: "@owns_record() and not status == 'published'" },
              ],
            },
          ],
        },
        // salary's write rule names it: HR reads the account's users and updates them
        hr: {
          permissions: [
            { permission: READ, policies: [{ condition: onUsers, effect: "allow" }] },
            { permission: UPDATE, policies: [{ condition: onUsers, effect: "allow" }] },
          ],
        },
        // Scenario 3 "Public Read, Private Write": no token, or an account's publishable key
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: READ,
              policies: [{ condition: onPosts, effect: "allow", omit: ["draft_notes", "internal_status"] }],
            },
          ],
        },
      },
    },
  },
};
export default app;
