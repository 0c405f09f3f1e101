/** Step 2: fully private. No default role: every data request without a token is 403. */
import type { CreateAppInput } from "citadel";
import { docsSchema } from "./schema.js";

export const app: CreateAppInput = {
  connection: { url: "file:data.db" },
  config: {
    data: docsSchema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "user",
      roles: {
        admin: { implicit_allow: true },
        user: {
          implicit_allow: false,
          permissions: ["data.entity.read", "data.entity.create", "data.entity.update"],
        },
        // NO default role - unauthenticated users get nothing
      },
    },
  },
};
export default app;
