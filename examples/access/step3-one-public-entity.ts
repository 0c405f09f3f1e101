/** Step 3: entity-specific public access: only posts are public. */
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
            // Only posts are public
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [{ condition: { entity: "posts" }, effect: "allow" }],
            },
          ],
        },
        user: {
          implicit_allow: false,
          permissions: [
            "data.entity.read", // Read all entities
            "data.entity.create",
            "data.entity.update",
          ],
        },
      },
    },
  },
};
export default app;
