/** The docs' "Blog Platform" (bknd's Public vs Authenticated Access guide), verbatim; `examples/blog` is the hardened version. */
import { boolean, type CreateAppInput, em, entity, relation, text } from "citadel";

export const schema = em(
  {
    posts: entity("posts", {
      title: text().required(),
      content: text(),
      published: boolean().default(false),
    }),
    comments: entity("comments", {
      body: text().required(),
      approved: boolean().default(false),
    }),
    users: entity("users", {}),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users),
    relation(comments, "post").manyToOne(posts),
    relation(comments, "user").manyToOne(users),
  ],
);

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
        // Public: read published posts + approved comments
        anonymous: {
          is_default: true,
          implicit_allow: false,
          permissions: [
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [
                { condition: { entity: "posts" }, effect: "filter", filter: { published: true } },
                { condition: { entity: "comments" }, effect: "filter", filter: { approved: true } },
              ],
            },
          ],
        },
        // Registered users: read all, create comments
        commenter: {
          implicit_allow: false,
          permissions: [
            "data.entity.read",
            {
              permission: "data.entity.create",
              effect: "allow",
              policies: [{ condition: { entity: "comments" }, effect: "allow" }],
            },
          ],
        },
        // Authors: full post access, manage own comments
        author: {
          implicit_allow: false,
          permissions: [
            "data.entity.read",
            {
              permission: "data.entity.create",
              effect: "allow",
              policies: [{ condition: { entity: { $in: ["posts", "comments"] } }, effect: "allow" }],
            },
            {
              permission: "data.entity.update",
              effect: "allow",
              policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { author_id: "@user.id" } }],
            },
          ],
        },
        // Admin: everything
        admin: { implicit_allow: true },
      },
    },
  },
};
export default blog;
