/**
 * The tenancy tests' app (§6): two accounts with notes, comments and tags, members who edit their own notes,
 * a tenant admin (implicit_allow inside its account), a superadmin over every account, and API keys. Not a
 * test file itself.
 */
import { boolean, type CitadelConfig, em, entity, relation, text } from "citadel";
import type { TestServer } from "../helpers/server.js";

export const schema = em(
  {
    notes: entity("notes", { title: text().required(), slug: text().unique(), public: boolean().default(false) }),
    comments: entity("comments", { body: text().required() }),
    tags: entity("tags", { name: text().required().unique() }),
    users: entity("users", {}),
  },
  ({ notes, comments, tags, users }) => [
    relation(notes, "author").manyToOne(users, { owner: true }),
    relation(comments, "note").manyToOne(notes),
    relation(notes, "tags").manyToMany(tags),
  ],
);

const own = (permission: string) => ({
  permission,
  policies: [{ condition: { entity: "notes" }, effect: "filter" as const, filter: { author_id: "@user.id" } }],
});

export function tenancyConfig(overrides: Partial<CitadelConfig> = {}): CitadelConfig {
  return {
    data: schema.toJSON(),
    auth: {
      enabled: true,
      jwt: { secret: "tenancy-tests-secret-0123456789-abcdefghijkl" },
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
      allow_register: true,
      default_role_register: "admin",
      api_keys: { enabled: true },
      roles: {
        anonymous: {
          is_default: true,
          permissions: [
            {
              permission: "data.entity.read",
              policies: [{ condition: { entity: "notes" }, effect: "filter", filter: { public: true } }],
            },
          ],
        },
        member: {
          permissions: [
            "data.entity.read",
            {
              permission: "data.entity.create",
              policies: [{ condition: { entity: { $in: ["notes", "comments", "tags"] } }, effect: "allow" }],
            },
            own("data.entity.update"),
            own("data.entity.delete"),
          ],
        },
        reader: { permissions: ["data.entity.read"] },
        admin: { implicit_allow: true },
        superadmin: { implicit_allow: true },
      },
    },
    tenancy: { enabled: true, register: "create", superadmin_role: "superadmin" },
    ...overrides,
  };
}

export const PASSWORD = "tenancy-tests-password";

/** Who the seed makes: account A (alice, bob members; adam its admin), account B (carol), root superadmin. */
export const PEOPLE = {
  alice: { email: "alice@a.test", account: "A", role: "member" },
  bob: { email: "bob@a.test", account: "A", role: "member" },
  adam: { email: "adam@a.test", account: "A", role: "admin" },
  carol: { email: "carol@b.test", account: "B", role: "member" },
  root: { email: "root@test.com", account: undefined, role: "superadmin" },
} as const;

export type Person = keyof typeof PEOPLE;

/** Seed two accounts, their people and one note each (the same slug in both accounts: unique per tenant). */
export async function seedTenants({ app }: { app: TestServer["app"] }): Promise<void> {
  const [a, b] = (await app.module.data.create("accounts", [
    { name: "Account A", slug: "a" },
    { name: "Account B", slug: "b" },
  ])) as { id: number }[];
  const accounts = { A: a!.id, B: b!.id };
  const ids: Record<string, number> = {};
  for (const [name, p] of Object.entries(PEOPLE)) {
    const user = await app.module.auth.createUser({
      email: p.email,
      password: PASSWORD,
      role: p.role,
      ...(p.account ? { account_id: accounts[p.account] } : {}),
    });
    ids[name] = user.id as number;
  }
  await app.module.data.create("notes", [
    { title: "alice's note", slug: "hello", public: true, author_id: ids.alice, account_id: accounts.A },
    { title: "bob's note", slug: "bob", author_id: ids.bob, account_id: accounts.A },
    { title: "carol's note", slug: "hello", public: true, author_id: ids.carol, account_id: accounts.B },
  ]);
  await app.module.data.create("comments", [
    { body: "on alice's", note_id: 1, account_id: accounts.A },
    { body: "on carol's", note_id: 3, account_id: accounts.B },
  ]);
}
