/**
 * Access tests declared as data (§12.3, `citadel test`): who asks (a user with a role, claims and an account, an
 * API key, or nobody), what (an entity and an action), on which fixture rows, and what must come back (status,
 * rows, fields, count). Each case runs over HTTP — the real routes, guard and tenancy — against a fresh private
 * in-memory database, and the decisions it took count toward a coverage line per policy: a policy no case
 * reached is reported as never matched.
 */
import { randomBytes } from "node:crypto";
import * as v from "valibot";
import { type CitadelApp, type CreateAppInput, createApp } from "../app.js";
import { deepestIssue, pathOf } from "../config/messages.js";
import { oneOf, strict } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import { policySources } from "../guard/report.js";

const ACTIONS = ["read", "count", "create", "update", "delete"] as const;
const PERMISSION = {
  read: "data.entity.read",
  count: "data.entity.read",
  create: "data.entity.create",
  update: "data.entity.update",
  delete: "data.entity.delete",
} as const;

const Id = v.pipe(v.number(), v.integer(), v.minValue(1));
const Row = v.record(v.string(), v.unknown());

const UserSchema = strict({
  role: v.optional(v.string()),
  /** claims an identity provider would add to the token (`department`, …) */
  claims: v.optional(v.record(v.string(), v.unknown())),
  /** the account (config.tenancy) the user belongs to */
  account: v.optional(Id),
});

const KeySchema = strict({
  key: oneOf(["publishable", "secret"] as const),
  role: v.optional(v.string()),
  tenant: v.optional(Id),
});

const CaseSchema = strict({
  name: v.pipe(v.string(), v.minLength(1)),
  /** a user of `users`, "anonymous" (no token), or an API key */
  as: v.union([v.string(), KeySchema]),
  entity: v.string(),
  action: oneOf(ACTIONS),
  /** read, update or delete one row; without it a read lists and an update or delete takes `where` */
  id: v.optional(Id),
  where: v.optional(Row),
  body: v.optional(v.unknown()),
  expect: v.pipe(
    strict({
      status: v.optional(v.pipe(v.number(), v.integer())),
      /** the ids of the rows answered (a list, a read, the rows written), in any order */
      rows: v.optional(v.array(Id)),
      /** the fields of every row answered, in any order */
      fields: v.optional(v.array(v.string())),
      count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    }),
    // a case that expects nothing passes whatever happens: it would count as a test and check nothing
    v.check((e) => Object.keys(e).length > 0, "expects nothing: name a status, rows, fields or count"),
  ),
});

const SuiteSchema = strict({
  /** the users cases act as, by name, created in this order after the tenant entity's fixtures */
  users: v.optional(v.record(v.string(), UserSchema), {}),
  /** rows written (trusted) before each case: entity → rows, in this order */
  fixtures: v.optional(v.record(v.string(), v.array(Row)), {}),
  cases: v.pipe(v.array(CaseSchema), v.minLength(1)),
});

export type AccessTestSuite = v.InferInput<typeof SuiteSchema>;
export type AccessCase = v.InferOutput<typeof CaseSchema>;

export interface CaseResult {
  name: string;
  passed: boolean;
  /** what differed from the expectation */
  problems: string[];
  status: number;
}

export interface AccessTestReport {
  results: CaseResult[];
  passed: number;
  failed: number;
  /** every policy of the config, and whether a case's decision reached it */
  coverage: { policy: string; matched: boolean }[];
}

/** Check a suite's shape; a problem is a ConfigError naming its path (`cases[2].expect.status`). */
export function parseSuite(input: unknown): v.InferOutput<typeof SuiteSchema> {
  const result = v.safeParse(SuiteSchema, input);
  if (result.success) return result.output;
  const { issue, path } = deepestIssue(result.issues[0]);
  throw new ConfigError(pathOf(issue.expected === "never" ? path.slice(0, -1) : path, "cases file"), issue.message);
}

/** The app a case runs on: the config as given, on a private in-memory database, with throwaway secrets. */
function scratchInput(input: CreateAppInput): CreateAppInput {
  const config = input.config ?? {};
  const auth = config.auth ?? {};
  return {
    ...input,
    connection: { url: ":memory:" },
    config: {
      ...config,
      auth: {
        ...auth,
        jwt: { ...auth.jwt, secret: randomBytes(48).toString("base64url") },
        // users are made and signed in by the harness: no cost to pay, no limit to hit
        password: { ...auth.password, argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
        rate_limit: { ...auth.rate_limit, max_per_email: 1_000_000, max_per_address: 1_000_000 },
      },
    },
    options: {
      ...input.options,
      seed: undefined,
      log: () => {},
      encryptionKeys: input.options?.encryptionKeys ?? `test:${randomBytes(32).toString("base64")}`,
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The request a case makes. */
function requestOf(c: AccessCase): { method: string; path: string; body?: unknown } {
  const base = `/api/data/${encodeURIComponent(c.entity)}`;
  const where = c.where ? `?where=${encodeURIComponent(JSON.stringify(c.where))}` : "";
  const one = c.id === undefined ? base : `${base}/${c.id}`;
  switch (c.action) {
    case "read":
      return { method: "GET", path: c.id === undefined ? `${base}${where}${where ? "&" : "?"}limit=1000` : one };
    case "count":
      return { method: "GET", path: `${base}/count${where}` };
    case "create":
      return { method: "POST", path: base, body: c.body ?? {} };
    case "update":
      return c.id === undefined
        ? { method: "PATCH", path: base, body: { update: c.body ?? {}, where: c.where ?? {} } }
        : { method: "PATCH", path: one, body: c.body ?? {} };
    case "delete":
      return c.id === undefined
        ? { method: "DELETE", path: base, body: c.where ?? {} }
        : { method: "DELETE", path: one };
  }
}

/** What a case's answer held, to compare with its expectation. */
function compare(c: AccessCase, status: number, body: unknown): string[] {
  const problems: string[] = [];
  const e = c.expect;
  if (e.status !== undefined && status !== e.status)
    problems.push(
      `expected status ${e.status}, got ${status}${isObject(body) && isObject(body.error) ? `: ${body.error.message}` : ""}`,
    );
  const data = isObject(body) ? body.data : undefined;
  const rows = (Array.isArray(data) ? data : isObject(data) && c.action !== "count" ? [data] : []).filter(isObject);
  if (e.rows !== undefined) {
    const got = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    const want = [...e.rows].sort((a, b) => a - b);
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`expected rows [${want}], got [${got}]`);
  }
  if (e.fields !== undefined) {
    const want = [...e.fields].sort();
    for (const row of rows) {
      const got = Object.keys(row).sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        problems.push(`expected fields ${want.join(", ")}, got ${got.join(", ")} (row ${String(row.id)})`);
        break;
      }
    }
  }
  if (e.count !== undefined) {
    const count = isObject(data) ? data.count : undefined;
    if (count !== e.count) problems.push(`expected count ${e.count}, got ${String(count)}`);
  }
  return problems;
}

interface Principal {
  headers: Record<string, string>;
  /** the role its decision is taken for (undefined: the default role, or a secret key that bypasses the guard) */
  role: string | undefined;
  /** whether the guard decides for it at all */
  guarded: boolean;
  claims?: Record<string, unknown>;
  tenant?: number;
}

type Suite = v.InferOutput<typeof SuiteSchema>;

/** Write the fixtures and users of a suite into a fresh app; returns the users' ids by name. */
async function arrange(app: CitadelApp, suite: Suite): Promise<Map<string, number>> {
  const tenancy = app.config.tenancy;
  const tenantEntity = tenancy.enabled ? tenancy.entity : undefined;
  const write = async (entity: string, rows: Record<string, unknown>[]) => {
    if (rows.length > 0) await app.module.data.create(entity, rows);
  };
  if (tenantEntity) await write(tenantEntity, suite.fixtures[tenantEntity] ?? []);
  const ids = new Map<string, number>();
  for (const [name, user] of Object.entries(suite.users)) {
    const created = await app.module.auth.createUser({
      email: `${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${ids.size + 1}@citadel.test`,
      password: randomBytes(24).toString("base64url"),
      role: user.role,
      ...(user.account !== undefined ? { [tenancy.field]: user.account } : {}),
    });
    ids.set(name, Number(created.id));
  }
  for (const [entity, rows] of Object.entries(suite.fixtures)) if (entity !== tenantEntity) await write(entity, rows);
  return ids;
}

async function principalOf(app: CitadelApp, suite: Suite, c: AccessCase, ids: Map<string, number>): Promise<Principal> {
  if (typeof c.as !== "string") {
    const keys = app.module.auth.apiKeys;
    if (!keys)
      throw new ConfigError(`cases file: case "${c.name}".as`, "API keys are off (config.auth.api_keys.enabled)");
    const made = await keys.create({ name: "citadel test", kind: c.as.key, role: c.as.role, tenant: c.as.tenant });
    const subject = keys.subject({ id: made.id, kind: made.kind, role: made.role, tenant: made.tenant });
    return {
      headers: { apikey: made.key },
      role: subject.role,
      guarded: !subject.trusted,
      tenant: made.tenant ?? undefined,
    };
  }
  if (c.as === "anonymous") return { headers: {}, role: undefined, guarded: true };
  const id = ids.get(c.as);
  const user = suite.users[c.as];
  if (id === undefined || !user)
    throw new ConfigError(`cases file: case "${c.name}".as`, `no user "${c.as}" in users (or "anonymous", or { key })`);
  const session = await app.module.auth.sessionOf(id, user.claims);
  const claims = { ...user.claims, id, email: session.user.email, role: user.role };
  return {
    headers: { authorization: `Bearer ${session.token}` },
    role: user.role,
    guarded: true,
    claims,
    tenant: user.account,
  };
}

/** Run every case of a suite against the app `input` describes; never touches its database. */
export async function runAccessTests(input: CreateAppInput, suiteInput: unknown): Promise<AccessTestReport> {
  const suite = parseSuite(suiteInput);
  const scratch = scratchInput(input);
  const results: CaseResult[] = [];
  const matched = new Set<string>();
  let all: string[] = [];
  for (const c of suite.cases) {
    const app = await createApp(scratch);
    try {
      all = [...policySources(app.config).keys()];
      const ids = await arrange(app, suite);
      const principal = await principalOf(app, suite, c, ids);
      const { method, path, body } = requestOf(c);
      const response = await app.fetch(
        new Request(`http://citadel.test${path}`, {
          method,
          headers: { ...principal.headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
      const answer = await response.json().catch(() => undefined);
      const problems = compare(c, response.status, answer);
      results.push({ name: c.name, passed: problems.length === 0, problems, status: response.status });
      // the same decision the request took, through explain: which policies it reached
      if (principal.guarded && app.engine.models.has(c.entity)) {
        const explained = app.explain({
          role: principal.role,
          permission: PERMISSION[c.action],
          entity: c.entity,
          user: principal.claims,
          id: c.id,
          tenant: app.config.tenancy.enabled ? principal.tenant : undefined,
        });
        for (const path of explained.matched) matched.add(path);
      }
    } finally {
      await app.close();
    }
  }
  const passed = results.filter((r) => r.passed).length;
  return {
    results,
    passed,
    failed: results.length - passed,
    coverage: all.map((policy) => ({ policy, matched: matched.has(policy) })),
  };
}
