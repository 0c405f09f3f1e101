/** Step 5: public records with a filter: anonymous sees published posts and visible products only. */
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
              policies: [
                // Posts: only published
                { condition: { entity: "posts" }, effect: "filter", filter: { status: "published" } },
                // Products: only visible
                { condition: { entity: "products" }, effect: "filter", filter: { visible: true } },
              ],
            },
          ],
        },
        // Authenticated users see all (the docs' "Result")
        user: { implicit_allow: false, permissions: ["data.entity.read"] },
      },
    },
  },
};
export default app;
