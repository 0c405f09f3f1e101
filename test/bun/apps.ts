/**
 * The apps the Bun tests serve (serve.ts loads this module in the Bun process): the docs' examples with
 * test-only auth settings, and users and rows seeded through `options.seed` (§3.5). It imports neither vitest
 * nor better-sqlite3, which do not load outside the test runner or under Bun.
 */
import type { CitadelConfig, CreateAppInput, SeedContext } from "citadel";
import step1 from "../../examples/access/step1-public-read-only.js";
import step5 from "../../examples/access/step5-filtered-public-records.js";
import step6 from "../../examples/access/step6-public-and-owner.js";

export const JWT_SECRET = "bun-tests-secret-0123456789-abcdefghijklmnop";
export const PASSWORD = "pass1234";
export const emailOf = (name: string) => `${name}@test.com`;
/** Login attempts one address may make per minute on the `auth` app. */
export const MAX_PER_ADDRESS = 3;

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
type Row = Record<string, any>;

/** What a seed created: user name → id, and the ids of the rows the tests name. */
export interface Seeded {
  users: Record<string, number>;
  rows: Record<string, number>;
}

interface TestApp {
  example: CreateAppInput;
  /** user name → role */
  users: Record<string, string>;
  rows?: (ctx: SeedContext, users: Record<string, number>) => Promise<Record<string, number>>;
  auth?: Partial<NonNullable<CitadelConfig["auth"]>>;
}

const create = async (ctx: SeedContext, entity: string, rows: Row[]) =>
  ((await ctx.app.module.data.create(entity, rows)) as Row[]).map((row) => row.id as number);

const apps: Record<string, TestApp> = {
  step1: {
    example: step1,
    users: { user: "user" },
    rows: async (ctx) => {
      const [hello, other] = await create(ctx, "posts", [{ title: "Hello" }, { title: "Confidential title" }]);
      return { hello: hello!, other: other! };
    },
  },
  step5: {
    example: step5,
    users: { user: "user" },
    rows: async (ctx) => {
      const [pub, draft] = await create(ctx, "posts", [
        { title: "Published one", status: "published" },
        { title: "Draft secret", status: "draft" },
      ]);
      const [shown, hidden] = await create(ctx, "products", [
        { name: "Shown product", visible: true },
        { name: "Hidden product", visible: false },
      ]);
      return { pub: pub!, draft: draft!, shown: shown!, hidden: hidden! };
    },
  },
  step6: {
    example: step6,
    users: { a: "user", b: "user" },
    rows: async (ctx, users) => {
      const [pubA, draftA, pubB, draftB] = await create(ctx, "posts", [
        { title: "A public", status: "published", author_id: users.a },
        { title: "A draft", status: "draft", author_id: users.a },
        { title: "B public", status: "published", author_id: users.b },
        { title: "B secret draft", status: "draft", author_id: users.b },
      ]);
      return { pubA: pubA!, draftA: draftA!, pubB: pubB!, draftB: draftB! };
    },
  },
  /** Step 6 with registration open and a tight per-address login limit. */
  auth: {
    example: step6,
    users: { b: "user" },
    rows: async (ctx, users) => {
      const [pubB, draftB] = await create(ctx, "posts", [
        { title: "B public", status: "published", author_id: users.b },
        { title: "B secret draft", status: "draft", author_id: users.b },
      ]);
      return { pubB: pubB!, draftB: draftB! };
    },
    auth: {
      allow_register: true,
      default_role_register: "user",
      rate_limit: { max_per_email: 10_000, max_per_address: MAX_PER_ADDRESS },
    },
  },
};

export const APP_NAMES = Object.keys(apps);

/** The app `name` with a fixed JWT secret and cheap argon2; its seed fills `seeded`. */
export function testApp(name: string, seeded: Seeded): CreateAppInput {
  const app = apps[name];
  if (!app) throw new Error(`no test app "${name}"; one of ${APP_NAMES.join(", ")}`);
  const auth = app.example.config?.auth ?? {};
  return {
    ...app.example,
    config: {
      ...app.example.config,
      auth: {
        ...auth,
        jwt: { secret: JWT_SECRET },
        password: { argon2: { memory_cost: 1024, time_cost: 1 } },
        rate_limit: { max_per_email: 10_000, max_per_address: 10_000 },
        ...app.auth,
      },
    },
    options: {
      seed: async (ctx) => {
        for (const [name, role] of Object.entries(app.users)) {
          const user = await ctx.app.module.auth.createUser({ email: emailOf(name), password: PASSWORD, role });
          seeded.users[name] = user.id as number;
        }
        if (app.rows) seeded.rows = await app.rows(ctx, seeded.users);
      },
    },
  };
}
