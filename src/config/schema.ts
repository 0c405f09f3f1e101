/** The config's shape, checked with valibot at startup; problems are reported with their path (§1.5). */
import * as v from "valibot";
import { ConfigError } from "../errors.js";
import { deepestIssue, pathOf, unknownKeyMessage } from "./messages.js";

/** Every object of the config is strict: an unknown key is a startup error naming the nearest known one (§1.8). */
export const strict = <const E extends v.ObjectEntries>(entries: E) =>
  v.strictObject(entries, unknownKeyMessage(Object.keys(entries)));

/** An enum whose error lists the allowed values. */
export const oneOf = <const T extends readonly string[]>(values: T) =>
  v.picklist(values, (issue) => `must be one of ${values.map((x) => `"${x}"`).join(", ")}; received ${issue.received}`);

/**
 * The schema typed by what it accepts, returns and reports, not by how it is built, so its declaration spells
 * those types out. Spelled as the nested valibot generics, an app's tsc resolved them top-down in one go (an
 * optional object level costs ~13 of its 100 levels of instantiation) and gave up: TS2589 on any `CitadelConfig`.
 * The repo checks the source bottom-up and never saw it; test/package.test.ts checks an app against the tarball.
 */
const sealed = <S extends v.GenericSchema>(
  schema: S,
): v.GenericSchema<v.InferInput<S>, v.InferOutput<S>, v.InferIssue<S>> => schema;

const FIELD_TYPES = ["text", "number", "boolean", "date", "enum", "json"] as const;

const fieldConfig = strict({
  required: v.optional(v.boolean()),
  default_value: v.optional(v.unknown()),
  unique: v.optional(v.boolean()),
  hidden: v.optional(v.boolean()),
  label: v.optional(v.string()),
  description: v.optional(v.string()),
  minLength: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  maxLength: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  pattern: v.optional(v.string()),
  format: v.optional(oneOf(["email"])),
  minimum: v.optional(v.number()),
  maximum: v.optional(v.number()),
  integer: v.optional(v.boolean()),
  type: v.optional(oneOf(["date", "datetime"])),
  options: v.optional(strict({ type: v.literal("strings"), values: v.array(v.string()) })),
  /** the field's previous name: sync renames the column instead of seeing a drop (§1.4) */
  renamedFrom: v.optional(v.string()),
  /** §10: text and json values stored as AES-256-GCM ciphertext; `searchable` (text) keeps an HMAC blind index */
  encrypted: v.optional(strict({ searchable: v.optional(v.boolean()) })),
});

const field = strict({ type: oneOf(FIELD_TYPES), config: v.optional(fieldConfig, {}) });

/** Field rules (§9.4): on which rows a field may be read, and when it may be written, as rule expressions. */
const fieldRules = v.record(v.string(), strict({ read: v.optional(v.string()), write: v.optional(v.string()) }));

const entity = strict({
  type: v.optional(oneOf(["regular", "system"]), "regular"),
  fields: v.optional(v.record(v.string(), field), {}),
  config: v.optional(
    strict({
      name: v.optional(v.string()),
      sort_field: v.optional(v.string()),
      sort_dir: v.optional(oneOf(["asc", "desc"])),
      /** field rules for every role (§9.4) */
      field_rules: v.optional(fieldRules),
    }),
  ),
});

const relation = strict({
  type: oneOf(["n:1", "1:1", "m:n"]),
  source: v.string(),
  target: v.string(),
  config: v.optional(
    strict({
      mappedBy: v.optional(v.string()),
      inversedBy: v.optional(v.string()),
      required: v.optional(v.boolean()),
      on_delete: v.optional(oneOf(["set null", "cascade", "restrict"])),
      connectionTable: v.optional(v.string()),
      with_limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
      owner: v.optional(v.boolean()),
    }),
    {},
  ),
});

const index = strict({
  entity: v.string(),
  fields: v.pipe(v.array(v.string()), v.minLength(1)),
  unique: v.optional(v.boolean(), false),
});

const policy = strict({
  description: v.optional(v.string()),
  condition: v.optional(v.record(v.string(), v.unknown())),
  effect: v.optional(oneOf(["allow", "deny", "filter"]), "allow"),
  filter: v.optional(v.record(v.string(), v.unknown())),
  /** a rule expression (§9.1): where an allow or deny applies, or what a filter's rows must satisfy */
  rule: v.optional(v.string()),
  /** an allowlist of fields (§4.8), or rules per field: `{ salary: { read: "<rule>", write: "<rule>" } }` (§9.4) */
  fields: v.optional(v.union([v.array(v.string()), fieldRules])),
  omit: v.optional(v.array(v.string())),
});

const permission = v.union([
  v.string(),
  strict({
    permission: v.string(),
    effect: v.optional(oneOf(["allow", "deny"]), "allow"),
    policies: v.optional(v.array(policy)),
  }),
]);

const role = strict({
  is_default: v.optional(v.boolean(), false),
  implicit_allow: v.optional(v.boolean(), false),
  permissions: v.optional(v.array(permission), []),
});

const JWKS_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

const jwt = strict({
  secret: v.optional(v.string()),
  alg: v.optional(oneOf(["HS256", "HS384", "HS512"]), "HS256"),
  expires: v.optional(v.union([v.string(), v.number()]), "1h"),
  issuer: v.optional(v.string(), "citadel"),
  audience: v.optional(v.string(), "citadel"),
  clock_tolerance: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(300)), 30),
  /** Tokens from an external identity provider, verified against its JWKS; issuer and audience are required. */
  jwks: v.optional(
    strict({
      url: v.pipe(v.string(), v.url()),
      issuer: v.string(),
      audience: v.string(),
      role_claim: v.optional(v.string(), "role"),
      // asymmetric algorithms only: an HMAC key or "none" must never come from a JWKS
      algorithms: v.optional(v.pipe(v.array(oneOf(JWKS_ALGORITHMS)), v.minLength(1)), ["RS256", "ES256"]),
    }),
  ),
});

const auth = strict({
  enabled: v.optional(v.boolean(), false),
  jwt: v.optional(jwt, {}),
  cookie: v.optional(
    strict({
      name: v.optional(v.string(), "auth"),
      secure: v.optional(v.boolean()),
      same_site: v.optional(oneOf(["Strict", "Lax"]), "Lax"),
    }),
    {},
  ),
  password: v.optional(
    strict({
      min_length: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 8),
      max_length: v.optional(v.pipe(v.number(), v.integer(), v.maxValue(1024)), 256),
      argon2: v.optional(
        strict({
          memory_cost: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024)), 19_456),
          time_cost: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 2),
          parallelism: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1),
        }),
        {},
      ),
    }),
    {},
  ),
  rate_limit: v.optional(
    strict({
      window_seconds: v.optional(v.pipe(v.number(), v.minValue(1)), 60),
      /** login failures on one email from one address; register attempts per email; password changes per user */
      max_per_email: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 10),
      /** login attempts on one email from all addresses new to it; 10 × max_per_email unless set (auth/rate-limit.ts) */
      max_per_email_total: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
      max_per_address: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 50),
      /** where the counters live: "database" by default on a shared database (libSQL server, PostgreSQL) */
      store: v.optional(oneOf(["memory", "database"] as const)),
    }),
    {},
  ),
  /** Publishable and secret API keys (§5); off unless enabled. */
  api_keys: v.optional(
    strict({
      enabled: v.optional(v.boolean(), false),
      /** every /api request needs a valid key; user tokens ride on top */
      require: v.optional(v.boolean(), false),
      /** the role a publishable key without a role of its own acts as, when no user token comes with it */
      publishable_role: v.optional(v.string(), "anonymous"),
      /** undefined: a secret key without a role of its own bypasses the guard; or the role it acts as */
      secret_role: v.optional(v.string()),
      /** the `<env>` of new keys (`pk_<env>_…`): a label such as "live" or "test", checked nowhere */
      env: v.optional(
        v.pipe(v.string(), v.regex(/^[a-z0-9]{1,16}$/, 'must be 1 to 16 lowercase letters or digits, e.g. "live"')),
        "live",
      ),
    }),
    {},
  ),
  /** enforced unless `enabled: false` when roles are configured (§1.9); see `guardEnforced` */
  guard: v.optional(strict({ enabled: v.optional(v.boolean()) }), {}),
  allow_register: v.optional(v.boolean(), false),
  default_role_register: v.optional(v.string()),
  roles: v.optional(v.record(v.string(), role), {}),
  dev: v.optional(v.boolean(), false),
});

function originOf(text: string): string | undefined {
  try {
    return new URL(text).origin;
  } catch {
    return undefined;
  }
}

/** An Origin as a browser sends it (`https://app.example.com`: no path, no trailing slash, lowercase), or "*". */
const corsOrigin = v.pipe(
  v.string(),
  v.check(
    (origin) => origin === "*" || originOf(origin) === origin,
    (issue) =>
      `"${issue.input}" is no origin a browser sends (scheme://host[:port], e.g. "${originOf(String(issue.input)) ?? "https://app.example.com"}"), so no request would match it`,
  ),
);

const server = strict({
  cors: v.optional(
    strict({
      origin: v.optional(v.union([corsOrigin, v.array(corsOrigin)])),
    }),
    {},
  ),
  max_body_bytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024)), 1_048_576),
  /** Behind a reverse proxy: take the client address from X-Forwarded-For and the scheme from X-Forwarded-Proto. */
  trust_proxy: v.optional(v.boolean(), false),
});

/** Tenant isolation (§6); off unless enabled. */
const tenancy = strict({
  enabled: v.optional(v.boolean(), false),
  /** the tenant table: created with name and slug unless the schema declares it */
  entity: v.optional(v.string(), "accounts"),
  /** the scope column added to every scoped entity and to users */
  field: v.optional(v.string(), "account_id"),
  /** which entities are scoped: every one but the tenant entity, or a list */
  entities: v.optional(v.union([v.literal("*"), v.array(v.string())]), "*"),
  /** "create": registering makes a new account; "closed": accounts come from code and admins */
  register: v.optional(oneOf(["create", "closed"]), "closed"),
  /** a role that is not scoped (SnackBase's @is_superadmin) */
  superadmin_role: v.optional(v.string()),
});

/** The audit trail (§7); off unless enabled. */
const audit = strict({
  enabled: v.optional(v.boolean(), false),
  /** record each data read too (basefyio's query log) */
  reads: v.optional(v.boolean(), false),
  /** `entity.field` values recorded as "[redacted]" (hidden and encrypted fields always are) */
  redact: v.optional(
    v.array(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, "expected entity.field"))),
    [],
  ),
  /** `citadel audit prune` removes entries older than this; unset: it removes nothing */
  retention_days: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});

/** The change feed (§8): an outbox written with every mutation, streamed as Server-Sent Events. */
const feed = strict({
  /** on by default (§8.1): every committed mutation is appended to the outbox */
  enabled: v.optional(v.boolean(), true),
  /** how often a server with subscribers reads the outbox for events other servers wrote (ms) */
  poll_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(10), v.maxValue(60_000)), 250),
  /** how often each subscriber's token or key is verified again (ms): a revoked one is cut within this */
  recheck_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(300_000)), 2000),
  /** a comment line this often keeps proxies from closing an idle stream (ms) */
  heartbeat_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(300_000)), 15_000),
  /** events waiting to be sent to one subscriber; a subscriber that falls further behind is dropped */
  buffer: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000)), 1000),
  /** and their size in bytes: large rows fill a queue before its count does (one message always fits) */
  buffer_bytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024)), 4_194_304),
  /** open streams per caller (user, key, or client address when anonymous) */
  max_subscribers_per_caller: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)), 5),
  /** open streams per server */
  max_subscribers: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1000),
  /** events older than this are removed from the outbox, and can no longer be resumed from */
  retention_hours: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 24),
});

const configShape = strict({
  data: v.optional(
    strict({
      entities: v.optional(v.record(v.string(), entity), {}),
      relations: v.optional(v.record(v.string(), relation), {}),
      indices: v.optional(v.record(v.string(), index), {}),
      default_limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 10),
      max_limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1000),
      // at most 20,000: a `with` level binds one key per parent row, under SQLite's 32,766 (query/options.ts)
      max_rows_per_request: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20_000)), 10_000),
      // at most 64 MiB: an answer is one JSON string (V8's longest is 2^29 - 24 characters), and a stored byte may
      // take six characters there (`\u0001`)
      max_response_bytes: v.optional(
        v.pipe(v.number(), v.integer(), v.minValue(1024), v.maxValue(67_108_864)),
        16_777_216,
      ),
    }),
    {},
  ),
  auth: v.optional(auth, {}),
  tenancy: v.optional(tenancy, {}),
  audit: v.optional(audit, {}),
  feed: v.optional(feed, {}),
  server: v.optional(server, {}),
  /** The admin page at /_admin (§12.6); off unless enabled. */
  admin: v.optional(strict({ enabled: v.optional(v.boolean(), false) }), {}),
});

export const ConfigSchema = sealed(configShape);

/** What users write. */
export type CitadelConfig = v.InferInput<typeof ConfigSchema>;
/** What the engine reads: defaults filled in. */
export type ValidatedConfig = v.InferOutput<typeof ConfigSchema>;
export type RoleConfig = ValidatedConfig["auth"]["roles"][string];
export type PermissionConfig = RoleConfig["permissions"][number];
export type PolicyConfig = Extract<PermissionConfig, { policies?: unknown }>["policies"] extends (infer P)[] | undefined
  ? P
  : never;

/** Validate a user config; throws ConfigError naming the first problem's path. */
export function validateConfig(input: unknown): ValidatedConfig {
  const result = v.safeParse(ConfigSchema, input ?? {});
  if (result.success) return result.output;
  const { issue, path } = deepestIssue(result.issues[0]);
  // an unknown key's issue sits on the key itself; name the object that holds it
  throw new ConfigError(pathOf(issue.expected === "never" ? path.slice(0, -1) : path), issue.message);
}

/** Whether the guard enforces the roles: yes when roles exist, unless the config turns it off in so many words (§1.9). */
export function guardEnforced(config: ValidatedConfig): boolean {
  return config.auth.guard.enabled ?? Object.keys(config.auth.roles).length > 0;
}
