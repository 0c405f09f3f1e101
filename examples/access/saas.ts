/** The docs' "SaaS Application": landing data is public, tiers get more, pro users manage their own data. */
import { boolean, type CreateAppInput, em, entity, number, relation, text } from "citadel";

const schema = em(
  {
    plans: entity("plans", { name: text().required(), price: number() }),
    features: entity("features", { name: text().required(), premium: boolean().default(false) }),
    projects: entity("projects", { name: text().required() }),
    tasks: entity("tasks", { title: text().required(), done: boolean().default(false) }),
    users: entity("users", {}),
  },
  ({ projects, tasks, users }) => [
    relation(projects, "owner").manyToOne(users),
    relation(tasks, "owner").manyToOne(users),
    relation(tasks, "project").manyToOne(projects),
  ],
);

export const app: CreateAppInput = {
  connection: { url: "file:data.db" },
  config: {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      guard: { enabled: true },
      allow_register: true,
      default_role_register: "free_user",
      roles: {
        // Landing page data only
        anonymous: {
          is_default: true,
          implicit_allow: false,
          permissions: [
            {
              permission: "data.entity.read",
              effect: "allow",
              policies: [{ condition: { entity: { $in: ["plans", "features"] } }, effect: "allow" }],
            },
          ],
        },
        // Free tier: limited access
        free_user: {
          implicit_allow: false,
          permissions: [
            "data.entity.read",
            {
              permission: "data.entity.create",
              effect: "allow",
              policies: [{ condition: { entity: "projects" }, effect: "allow" }],
            },
          ],
        },
        // Paid tier: full access to own data
        pro_user: {
          implicit_allow: false,
          permissions: [
            "data.entity.read",
            "data.entity.create",
            {
              permission: "data.entity.update",
              effect: "allow",
              policies: [{ effect: "filter", filter: { owner_id: "@user.id" } }],
            },
            {
              permission: "data.entity.delete",
              effect: "allow",
              policies: [{ effect: "filter", filter: { owner_id: "@user.id" } }],
            },
          ],
        },
        admin: { implicit_allow: true },
      },
    },
  },
};
export default app;
