/**
 * bkend's "Security Overview" page (`reference/bkend-security-overview.md`) as a Citadel app: its four user groups
 * with the default permissions of its RLS table, `createdBy` owners, publishable and secret API keys.
 *
 * | bkend group | the page's default permissions | here |
 * |---|---|---|
 * | `admin` | All permissions | role `admin`: `implicit_allow` (every data and system permission, keys included) |
 * | `user` | Create, read, list | role `user` (what registering gives): read (one row and lists) and create on every table |
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
 * - Not Citadel's to express: TLS 1.2+ in transit (the proxy in front of the server), "MongoDB Atlas Encryption at
 *   Rest" (the database's disk). API keys are stored as SHA-256 digests and passwords as argon2id hashes, as the
 *   page says, with no config.
 */
import { type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    posts: entity("posts", { title: text().required().maxLength(200), content: text().maxLength(100_000) }),
    comments: entity("comments", { body: text().required().maxLength(2_000) }),
    users: entity("users", { name: text().maxLength(80) }),
  },
  ({ posts, comments, users }) => [
    // bkend's createdBy: posts.created_by_id and comments.created_by_id, set by the server on create
    relation(posts, "created_by").manyToOne(users, { owner: true }),
    relation(comments, "created_by").manyToOne(users, { owner: true }),
    relation(comments, "post").manyToOne(posts, { on_delete: "cascade" }),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";

/** The app's own tables, which the groups' default permissions govern (not the auth table `users`). */
const TABLES = ["posts", "comments"];
const onTables = { entity: { $in: TABLES } };
const onUsers = { entity: "users" };

/** guest and user read and list every row of every table; of users, only the public name. */
const readAndList = {
  permission: READ,
  policies: [
    { condition: onTables, effect: "allow" as const },
    { condition: onUsers, effect: "allow" as const, fields: ["id", "name"] },
  ],
};

/** self: "access based on createdBy", i.e. the row's owner updates and deletes it. */
const self = { condition: onTables, effect: "filter" as const, filter: { $owner: true } };

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
            readAndList,
            { permission: CREATE, policies: [{ condition: onTables, effect: "allow" }] },
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
