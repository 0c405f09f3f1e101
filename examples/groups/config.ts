/**
 * bkend's "Security Overview" page (`reference/bkend-security-overview.md`) as a Citadel app: its four user groups
 * with the default permissions of its RLS table, `createdBy` owners, publishable and secret API keys, and the
 * page's "Database connection credentials: AES-256-GCM (application level)" as encrypted fields.
 *
 * | bkend group | the page's default permissions | here |
 * |---|---|---|
 * | `admin` | All permissions | role `admin`: `implicit_allow` (every data and system permission, keys included) |
 * | `user` | Create, read, list | role `user` (what registering gives): read (one row and lists) and create on posts and comments |
 * | `guest` | Read, list | role `guest`, the default role: no token, or a publishable key without a token |
 * | `self` | Access based on createdBy | the owner of a row: update and delete where `created_by_id` is the caller |
 *
 * What Citadel writes differently, and why:
 * - `self` is not a role a token carries but a relation between a caller and a row, so it is the `user` role's
 *   update and delete narrowed by `{ $owner: true }` (§4.14); "own data" is read by the `user` role already.
 * - The owner column: bkend's `createdBy` is `relation(…, "created_by").manyToOne(users, { owner: true })`, i.e.
 *   `created_by_id` (Citadel's names are lowercase letters, digits and `_`, and a many-to-one's column is
 *   `<name>_id`). The server fills it with the caller's id on create; a body naming someone else is 403 (§4.14).
 * - `users` is Citadel's auth table; bkend keeps its users out of the tables the groups govern. So groups read
 *   users' public `name` only (column-level, the page's "Row and Column level"), a user renames only their own
 *   row, and emails and roles are an admin's (or a secret key's) to read.
 * - Secret keys bypass the guard ("full permissions", `secret_role` left out) and never work from a browser
 *   (an `Origin` header: 401, §5.4); a publishable key is a guest ("limited permissions"), and with a user's token
 *   alongside it is that user.
 * - `connections` holds database connection credentials, encrypted at rest (§10: AES-256-GCM, a fresh IV per value,
 *   keys from `CITADEL_ENCRYPTION_KEYS`; the server refuses to start without one). Encryption decides what the
 *   database file holds, not who reads: that is still the guard's, and credentials are no guest's to list, so
 *   this table narrows the defaults (bkend sets RLS per table): a user creates connections and, as `self`, reads,
 *   updates and deletes their own; guests and publishable keys get nothing; admins and secret keys everything.
 *   `host` is searchable (`$eq`/`$in` through a keyed blind index), `credentials` not even that.
 * - Not Citadel's to express: TLS 1.2+ in transit (the proxy in front of the server), "MongoDB Atlas Encryption at
 *   Rest" (the database's disk). API keys are stored as SHA-256 digests and passwords as argon2id hashes, as the
 *   page says, with no config.
 */
import { type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    posts: entity("posts", { title: text().required().maxLength(200), content: text().maxLength(100_000) }),
    comments: entity("comments", { body: text().required().maxLength(2_000) }),
    connections: entity("connections", {
      name: text().required().maxLength(100),
      host: text().encrypted({ searchable: true }),
      credentials: text().encrypted(),
    }),
    users: entity("users", { name: text().maxLength(80) }),
  },
  ({ posts, comments, connections, users }) => [
    // bkend's createdBy: <table>.created_by_id, set by the server on create
    relation(posts, "created_by").manyToOne(users, { owner: true }),
    relation(comments, "created_by").manyToOne(users, { owner: true }),
    relation(connections, "created_by").manyToOne(users, { owner: true }),
    relation(comments, "post").manyToOne(posts, { on_delete: "cascade" }),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

/** The app's tables that the groups' default permissions govern (not the auth table `users`, not `connections`). */
const onTables = { entity: { $in: ["posts", "comments"] } };
/** Every table with a `createdBy`: where `self` applies. */
const onOwned = { entity: { $in: ["posts", "comments", "connections"] } };
const onUsers = { entity: "users" };
const onConnections = { entity: "connections" };

/** guest and user read and list every row of posts and comments; of users, only the public name. */
const readAndList = {
  permission: READ,
  policies: [
    { condition: onTables, effect: "allow" as const },
    { condition: onUsers, effect: "allow" as const, fields: ["id", "name"] },
  ],
};

/** self: "access based on createdBy", i.e. the row's owner updates and deletes it. */
const self = { condition: onOwned, effect: "filter" as const, filter: { $owner: true } };

export const app: CreateAppInput = {
  connection: { url: process.env.CITADEL_DB ?? "file:groups.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "user",
      api_keys: {
        enabled: true,
        publishable_role: "guest", // "Publishable Key: used on the client side (limited permissions)"
        // secret_role left out: "Secret Key: used on the server side only (full permissions)"
      },
      roles: {
        admin: { implicit_allow: true },
        user: {
          permissions: [
            // connections: self reads only their own
            { ...readAndList, policies: [...readAndList.policies, { ...self, condition: onConnections }] },
            { permission: CREATE, policies: [{ condition: onOwned, effect: "allow" }] },
            {
              permission: UPDATE,
              policies: [
                self,
                // a user's own row of users: its name only
                { condition: onUsers, effect: "filter", filter: { id: "@user.id" }, fields: ["name"] },
              ],
            },
            { permission: DELETE, policies: [self] },
          ],
        },
        guest: { is_default: true, permissions: [readAndList] },
      },
    },
  },
};
export default app;
