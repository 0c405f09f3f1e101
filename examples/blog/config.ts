/**
 * The blog `npm start` serves, written as we would deploy it: the docs' "Blog Platform" (verbatim in
 * `examples/access/blog.ts`) hardened. Posts and comments are owned by their writer (set by the server, never
 * spoofed through `author_id`); commenters may only comment on published posts; `approved` is written only by
 * moderators through a field rule; users' emails and roles are never listable, only their public name.
 */
import { boolean, type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    posts: entity("posts", {
      title: text().required().maxLength(200),
      content: text().maxLength(100_000),
      published: boolean().default(false),
    }),
    comments: entity("comments", {
      body: text().required().maxLength(2_000),
      approved: boolean().default(false),
    }),
    users: entity("users", { name: text().maxLength(80) }),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users, { owner: true }),
    relation(comments, "post").manyToOne(posts, { on_delete: "cascade" }),
    relation(comments, "author").manyToOne(users, { owner: true }),
  ],
);

const READ = "data.entity.read";
const CREATE = "data.entity.create";
const UPDATE = "data.entity.update";
const DELETE = "data.entity.delete";
const mine = { $owner: true };

/** What anyone may read: published posts, approved comments on them, and people's public names. */
const publicReads = [
  { condition: { entity: "posts" }, effect: "filter" as const, filter: { published: true } },
  {
    condition: { entity: "comments" },
    effect: "filter" as const,
    filter: { approved: true, "post.published": true },
  },
  { condition: { entity: "users" }, effect: "allow" as const, fields: ["id", "name"] },
];

/** Signed-in readers also see their own drafts and their own comments awaiting approval. */
const memberReads = [
  { condition: { entity: "posts" }, effect: "filter" as const, filter: { $or: [{ published: true }, mine] } },
  {
    condition: { entity: "comments" },
    effect: "filter" as const,
    filter: { $or: [{ approved: true, "post.published": true }, mine] },
  },
  publicReads[2]!,
];

/** Commenters write comments, on published posts only, and edit or delete their own (never `approved`). */
const commenting = [
  {
    permission: CREATE,
    policies: [
      {
        condition: { entity: "comments" },
        effect: "filter" as const,
        filter: { "post.published": true },
        fields: ["body", "post_id"],
      },
    ],
  },
  {
    permission: UPDATE,
    policies: [{ condition: { entity: "comments" }, effect: "filter" as const, filter: mine, fields: ["body"] }],
  },
  { permission: DELETE, policies: [{ condition: { entity: "comments" }, effect: "filter" as const, filter: mine }] },
];

export const blog: CreateAppInput = {
  connection: { url: process.env.CITADEL_DB ?? "file:data.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "commenter",
      roles: {
        anonymous: { is_default: true, permissions: [{ permission: READ, policies: publicReads }] },
        commenter: { permissions: [{ permission: READ, policies: memberReads }, ...commenting] },
        author: {
          permissions: [
            { permission: READ, policies: memberReads },
            ...commenting,
            { permission: CREATE, policies: [{ condition: { entity: "posts" }, effect: "allow" }] },
            {
              permission: UPDATE,
              policies: [{ condition: { entity: "posts" }, effect: "filter", filter: mine }],
            },
            { permission: DELETE, policies: [{ condition: { entity: "posts" }, effect: "filter", filter: mine }] },
          ],
        },
        moderator: {
          permissions: [
            {
              permission: READ,
              policies: [
                { condition: { entity: "posts" }, effect: "allow" },
                { condition: { entity: "comments" }, effect: "allow" },
                publicReads[2]!,
              ],
            },
            {
              permission: UPDATE,
              policies: [{ condition: { entity: "comments" }, effect: "allow", fields: ["approved"] }],
            },
            { permission: DELETE, policies: [{ condition: { entity: "comments" }, effect: "allow" }] },
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};
export default blog;
