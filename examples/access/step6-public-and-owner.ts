/** Step 6: mixed public/owner access: the public reads published posts; owners also read their drafts. */
import type { CreateAppInput } from "citadel";
import { docsSchema } from "./schema.js";

export const app: CreateAppInput = {
  connection: { url: "file:data.db" },
  config: {
    data: docsSchema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      roles: {
        anonymous: {
          is_default: true,
          implicit_allow: false,
          permissions: [
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [{ condition: { entity: "posts" }, effect: "filter", filter: { status: "published" } }],
            },
          ],
        },
        user: {
          implicit_allow: false,
          permissions: [
            // Read: published OR own posts
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [
                {
                  condition: { entity: "posts" },
                  effect: "filter",
                  filter: { $or: [{ status: "published" }, { author_id: "@user.id" }] },
                },
              ],
            },
            // Create allowed
            "data.entity.create",
            // Update own only
            {
              permission: "data.entity.update",
              effect: "allow",
              policies: [{ effect: "filter", filter: { author_id: "@user.id" } }],
            },
          ],
        },
      },
    },
  },
};
export default app;
