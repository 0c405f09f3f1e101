/** The schema the docs' Steps 2–8 assume: posts with a status and an author, and a few public-ish entities. */
import { boolean, em, entity, enumm, relation, text } from "citadel";

export const docsSchema = em(
  {
    posts: entity("posts", {
      title: text().required(),
      content: text(),
      status: enumm({ enum: ["draft", "published"] }).default("draft"),
    }),
    comments: entity("comments", { body: text().required() }),
    categories: entity("categories", { name: text().required() }),
    tags: entity("tags", { name: text().required() }),
    products: entity("products", { name: text().required(), visible: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ posts, comments, users }) => [
    relation(posts, "author").manyToOne(users),
    relation(comments, "post").manyToOne(posts),
  ],
);
