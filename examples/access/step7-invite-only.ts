/** Step 7: invite-only: no public access, no self-registration; the admin is created by the seed. */
import type { CreateAppInput } from "citadel";
import { docsSchema } from "./schema.js";

export const app: CreateAppInput = {
  connection: { url: "file:data.db" },
  config: {
    data: docsSchema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: false, // Disable self-registration
      roles: {
        admin: { implicit_allow: true },
        member: {
          implicit_allow: false,
          permissions: ["data.entity.read", "data.entity.create", "data.entity.update"],
        },
        // No default role
      },
    },
  },
  options: {
    seed: async (ctx) => {
      // Admin creates users manually
      await ctx.app.module.auth.createUser({
        email: "admin@company.com",
        password: "admin-password",
        role: "admin",
      });
    },
  },
};
export default app;
