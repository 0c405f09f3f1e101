/** Step 1: fully public (read-only). Anyone reads; users create and update. */
import { type CreateAppInput, em, entity, text } from "citadel";

const schema = em({ posts: entity("posts", { title: text().required() }) });

export const app: CreateAppInput = {
  connection: { url: "file:data.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        // Public role - anyone can read
        anonymous: { is_default: true, implicit_allow: false, permissions: ["data.entity.read"] },
        // Authenticated users can create/update
        user: {
          implicit_allow: false,
          permissions: ["data.entity.read", "data.entity.create", "data.entity.update"],
        },
      },
    },
  },
};
export default app;
