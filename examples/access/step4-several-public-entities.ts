/** Step 4: several public entities. */
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
              policies: [{ condition: { entity: { $in: ["posts", "categories", "tags"] } }, effect: "allow" }],
            },
          ],
        },
      },
    },
  },
};
export default app;
