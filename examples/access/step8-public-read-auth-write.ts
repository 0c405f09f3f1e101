/** Step 8: API with public read and authenticated write. */
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
        anonymous: { is_default: true, implicit_allow: false, permissions: ["data.entity.read"] }, // Read anything
        api_user: {
          implicit_allow: false,
          permissions: ["data.entity.read", "data.entity.create", "data.entity.update", "data.entity.delete"],
        },
      },
    },
  },
};
export default app;
