/**
 * Runs the docs' examples (§9) over HTTP: the example's own config plus test-only auth settings, users created
 * through `options.seed` (§3.5), trusted seed rows, and PocketBase-style scenario tables per principal.
 */
import { type CitadelConfig, type CreateAppInput, createApp, type SeedContext } from "citadel";
import { expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { startServer, type TestResponse, type TestServer } from "../helpers/server.js";

export const TEST_SECRET = "a-test-secret-that-is-at-least-32-bytes-long!!";
/** Every seeded user's password (the docs' `pass123` is below the default minimum length of 8, §3.1). */
export const PASSWORD = "pass1234";
export const emailOf = (name: string) => `${name}@test.com`;
export const ANON = "anon";

// biome-ignore lint/suspicious/noExplicitAny: rows are arbitrary JSON
export type Row = Record<string, any>;

type Roles = NonNullable<NonNullable<CitadelConfig["auth"]>["roles"]>;

/** The message an app with `data` and the guard on over `roles` fails to start with; throws if it starts (1.5). */
// biome-ignore lint/suspicious/noExplicitAny: configs under test are deliberately wrong
export async function rolesStartupError(data: CitadelConfig["data"], roles: any): Promise<string> {
  try {
    const app = await createApp({
      connection: { url: ":memory:" },
      config: { data, auth: { enabled: true, jwt: { secret: "x".repeat(32) }, guard: { enabled: true }, roles } },
    });
    await app.close();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the config was accepted");
}

/**
 * An app of `schema` with auth on and these roles, so the guard enforces them (§1.9); `config` adds the rest
 * (feed, data limits). `boot` then gives it the test-only auth settings.
 */
export function guardedApp(
  schema: { toJSON(): unknown },
  roles: Roles,
  config: Omit<CitadelConfig, "data" | "auth"> = {},
): CreateAppInput {
  return { config: { data: schema.toJSON() as CitadelConfig["data"], ...config, auth: { enabled: true, roles } } };
}

/** Guests read, users read and write everything, admins bypass: for apps whose rules sit in field rules. */
export const READ_WRITE_ROLES: Roles = {
  guest: { is_default: true, permissions: ["data.entity.read"] },
  user: { permissions: ["data.entity.read", "data.entity.create", "data.entity.update", "data.entity.delete"] },
  admin: { implicit_allow: true },
};

/** The example's config, changed only so tests can run: fixed JWT secret, cheap argon2, loose rate limits. */
export function testConfig(config: CitadelConfig | undefined): CitadelConfig {
  const auth = config?.auth ?? {};
  return {
    ...config,
    auth: {
      ...auth,
      jwt: { ...auth.jwt, secret: TEST_SECRET },
      password: { ...auth.password, argon2: { memory_cost: 1024, time_cost: 1 } },
      rate_limit: { ...auth.rate_limit, max_per_email: 10_000, max_per_address: 10_000 },
    },
  };
}

/** Trusted insert (no guard), returning the created rows. */
export async function insert(ctx: SeedContext, entity: string, rows: Row[]): Promise<Row[]> {
  return (await ctx.app.module.data.create(entity, rows)) as Row[];
}

export interface BootOptions<R> {
  /** user name → role; each becomes `<name>@test.com` with PASSWORD and is logged in */
  users?: Record<string, string>;
  /** trusted rows, created in the seed after the users */
  rows?: (ctx: SeedContext, ids: Record<string, number>) => Promise<R>;
  /** also run the example's own `options.seed` first */
  exampleSeed?: boolean;
}

export interface Booted<R> {
  server: TestServer;
  ids: Record<string, number>;
  tokens: Record<string, string>;
  rows: R;
  /** A request as a named user, or as nobody with ANON. */
  as(who: string, method: string, path: string, body?: unknown): Promise<TestResponse>;
}

/** Start an example on a temp database with the given users and rows. */
export async function boot<R = undefined>(example: CreateAppInput, opts: BootOptions<R> = {}): Promise<Booted<R>> {
  const ids: Record<string, number> = {};
  let rows = undefined as R;
  const server = await startServer(testConfig(example.config), {
    options: {
      seed: async (ctx) => {
        if (opts.exampleSeed) await example.options?.seed?.(ctx);
        for (const [name, role] of Object.entries(opts.users ?? {})) {
          const user = await ctx.app.module.auth.createUser({ email: emailOf(name), password: PASSWORD, role });
          ids[name] = user.id as number;
        }
        if (opts.rows) rows = await opts.rows(ctx, ids);
      },
    },
  });
  const tokens: Record<string, string> = {};
  for (const name of Object.keys(opts.users ?? {})) tokens[name] = await login(server, emailOf(name), PASSWORD);
  return {
    server,
    ids,
    tokens,
    rows,
    as: (who, method, path, body) =>
      server.request(method, path, body, bearer(who === ANON ? undefined : (tokens[who] ?? who))),
  };
}

/** URL-encode a JSON value for a query parameter. */
export const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));

export const idsOf = (res: TestResponse): number[] =>
  (res.body?.data ?? []).map((r: Row) => r.id).sort((a: number, b: number) => a - b);

export const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** A 403 body names the permission and entity and carries nothing else (§4.9). */
export function expectForbidden(res: TestResponse, permission: string, entity: string) {
  expect(res.status, res.text).toBe(403);
  expect(res.body).toEqual({ error: { code: "forbidden", message: expect.any(String), permission, entity } });
}

/** A 404 says only "not found" (§4.10). */
export function expectNotFound(res: TestResponse) {
  expect(res.status, res.text).toBe(404);
  expect(res.body).toEqual({ error: { code: "not_found", message: expect.any(String) } });
}

/** Read the database directly (trusted), to prove what a refused write did not write. Values as SQLite reports them. */
export function dbRows(server: TestServer, sql: string, ...params: unknown[]): Promise<Row[]> {
  return server.rows(sql, ...params);
}

type Lazy<T, R> = T | ((b: Booted<R>) => T);

/** One row of a scenario table (PocketBase's ApiScenario): who asks what, and what must and must not come back. */
export interface Scenario<R> {
  name: string;
  as: string;
  /** "METHOD /path" */
  req: Lazy<string, R>;
  body?: Lazy<Record<string, unknown> | unknown[], R>;
  status: number;
  /** a subset the JSON body must match */
  expected?: Lazy<unknown, R>;
  /** exactly this 403 body (§4.9) */
  forbidden?: [permission: string, entity: string];
  /** substrings the raw body must not contain */
  notExpected?: Lazy<string[], R>;
}

const resolve = <T, R>(value: Lazy<T, R>, b: Booted<R>): T =>
  typeof value === "function" ? (value as (b: Booted<R>) => T)(b) : value;

/** One `it` per scenario; `get` returns the example booted in `beforeAll`. */
export function scenarios<R>(get: () => Booted<R>, table: Scenario<R>[]) {
  for (const s of table)
    it(s.name, async () => {
      const b = get();
      const req = resolve(s.req, b);
      const [method, path] = req.split(" ") as [string, string];
      const res = await b.as(s.as, method, path, resolve(s.body, b));
      expect(res.status, `${req} as ${s.as}: ${res.text}`).toBe(s.status);
      if (s.forbidden) expectForbidden(res, ...s.forbidden);
      if (s.expected !== undefined) expect(res.body).toMatchObject(resolve(s.expected, b) as object);
      for (const text of resolve(s.notExpected, b) ?? []) expect(res.text).not.toContain(text);
    });
}

/**
 * Requests as named principals, each a function giving its headers (called per request: tokens and keys exist
 * only once the app is booted); `ok` also asserts a 2xx.
 */
export function principals(server: () => TestServer, who: Record<string, () => Record<string, string>>) {
  const as = (name: string, method: string, path: string, body?: unknown): Promise<TestResponse> =>
    server().request(method, path, body, who[name]!());
  const ok = async (name: string, method: string, path: string, body?: unknown) => {
    const res = await as(name, method, path, body);
    expect(res.status, `${method} ${path} as ${name}: ${res.text}`).toBeLessThan(300);
    return res;
  };
  return { as, ok };
}

/**
 * A refusal that changed nothing: `refused(attempt, check)` runs the attempt, checks its answer, and asserts that
 * `snapshot` (everything the database holds that a write could change) is as it was before.
 */
export function refusedWithout(snapshot: () => Promise<unknown>) {
  return async (attempt: () => Promise<TestResponse>, check: (res: TestResponse) => void): Promise<void> => {
    const before = await snapshot();
    check(await attempt());
    expect(await snapshot()).toEqual(before);
  };
}
