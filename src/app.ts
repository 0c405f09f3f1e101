/** `createApp`: validate config → compile schema → connect → sync → assemble the HTTP app. Once, at startup. */
import { AuditTrail, checkRedacted } from "./audit/index.js";
import { type AuthModule, authSettings, createAuth, disabledAuth, type RateLimitStore } from "./auth/index.js";
import { checkAppInput } from "./config/input.js";
import { type CitadelConfig, guardEnforced, type ValidatedConfig, validateConfig } from "./config/schema.js";
import type { Row } from "./data/codec.js";
import { DataEngine } from "./data/engine.js";
import { DataEvents } from "./data/events.js";
import { attachKeyring, KEYS_ENV } from "./data/keyring.js";
import { buildModels } from "./data/models.js";
import { type ConnectionConfig, connectionProblem, type Db, openDatabase } from "./db/connection.js";
import { type FeedHub, openFeed } from "./feed/index.js";
import { type Access, guardedAccess, type Subject } from "./guard/access.js";
import { compileRoles } from "./guard/compile.js";
import { type ExplainQuery, type Explanation, explain } from "./guard/explain.js";
import { Guard } from "./guard/guard.js";
import { policyIndexes } from "./guard/indexes.js";
import { type AccessReport, accessReport, roleView } from "./guard/report.js";
import { tenancyOf, tenantAccess } from "./guard/tenancy.js";
import { httpApp } from "./http/app.js";
import { fieldsOf, TRUE } from "./query/ast.js";
import { defaultRuntime, type Runtime } from "./runtime.js";
import { compileSchema } from "./schema/compile.js";
import type { SchemaJSON } from "./schema/entity.js";
import { isSeeded, markSeeded, syncSchema } from "./schema/sync.js";
import { CITADEL_VERSION } from "./version.js";

export interface SeedContext {
  app: CitadelApp;
  db: Db;
}

export interface AppOptions {
  /** Runs once, right after the tables of a new database are created (again at the next start if it throws). */
  seed?: (ctx: SeedContext) => Promise<void> | void;
  /** Apply destructive schema changes (dropped or retyped columns). Off unless asked explicitly. */
  destructive?: boolean;
  /** Where unexpected errors and warnings go; defaults to console.error. */
  log?: (message: string, error?: unknown) => void;
  /** Where rate-limit counters live; overrides `auth.rate_limit.store` (by default the database when it is shared). */
  rateLimitStore?: RateLimitStore;
  /**
   * The keys of encrypted fields (§10), "id:base64,id2:base64": the first encrypts, all decrypt. The environment's
   * `CITADEL_ENCRYPTION_KEYS` when not given (runtimes without a process environment pass it here).
   */
  encryptionKeys?: string;
}

export interface CreateAppInput {
  connection?: ConnectionConfig;
  /** The runtime's connections, password hashing and client addresses; adapters pass theirs, Node's serve when none is given. */
  runtime?: Runtime;
  config?: CitadelConfig;
  options?: AppOptions;
}

/** Trusted server-side access to the data, for seeds and scripts (no guard). */
export interface DataModule {
  create(entity: string, row: Row | Row[]): Promise<Row | Row[]>;
  list(entity: string, where?: unknown): Promise<Row[]>;
  /** Delete the rows a (non-empty) where names, at most 10,000, with no byte bound on what its keys reach. */
  deleteMany(entity: string, where: unknown): Promise<Row[]>;
}

export interface CitadelApp {
  /** The Fetch API handler: `(request, env?) => response`, for any runtime (`env` carries the runtime's bindings). */
  fetch(request: Request, env?: unknown): Promise<Response>;
  readonly config: ValidatedConfig;
  readonly db: Db;
  readonly engine: DataEngine;
  /** the audit trail (§7), when `config.audit.enabled` */
  readonly audit: AuditTrail | undefined;
  /** the change feed (§8), unless `config.feed.enabled` is false */
  readonly feed: FeedHub | undefined;
  /** `auth` works when `config.auth.enabled`; otherwise its calls throw. */
  readonly module: { data: DataModule; auth: AuthModule };
  /** What the configured roles decide for a role, permission and entity, and the SQL WHERE it adds. */
  explain(query: ExplainQuery): Explanation;
  /** The static access report (§12.2): every role × entity × action, every field, and warnings. */
  accessReport(): AccessReport;
  close(): Promise<void>;
}

const ALL_ROWS = { filter: TRUE };

/** Access for a trusted caller, and for every caller while the guard is disabled. */
export function openAccess(subject: Subject): Access {
  return { subject, require: () => ALL_ROWS, find: () => ALL_ROWS };
}

/** The trusted module reads and writes through the same accessor as every caller, with open access. */
const TRUSTED: Subject = { role: undefined, trusted: true };
const UNBOUNDED = { defaultLimit: 1_000_000, maxLimit: 1_000_000 };

function dataModule(engine: DataEngine): DataModule {
  const data = engine.as(openAccess(TRUSTED), UNBOUNDED);
  return {
    create: (entity, row) => data.create(entity, row),
    list: async (entity, where) => (await data.list(entity, { where, limit: UNBOUNDED.maxLimit })).data,
    deleteMany: (entity, where) => data.deleteMany(entity, where),
  };
}

/** Said at every start while no guard enforces: a config that forgot it must not look secure (§1.9). */
function openWarning(config: ValidatedConfig): string {
  const why = !config.auth.enabled
    ? "auth is not enabled (config.auth.enabled)"
    : config.auth.guard.enabled === false
      ? "the guard is disabled (config.auth.guard.enabled: false)"
      : "no roles are configured (config.auth.roles)";
  return `WARNING: ${why}: every /api/data route is open to every caller, anonymous ones included`;
}

/**
 * §3.3: what a registration may set of its own users row — what the role it registers with may update, through
 * the guard's decision: not a field with a rule that depends on the row, nor one the update's filter names (the
 * row does not exist yet, so neither can be checked on it: `verified: false` in a filter keeps `verified` out).
 */
function registrableFields(guard: Guard, role: string | undefined, visible: string[]) {
  const decision = guard.decide(role, "data.entity.update", { entity: "users" });
  if (decision.effect === "deny") return { fields: new Set<string>(), role };
  const filtered = fieldsOf(decision.filter);
  const granted = visible.filter(
    (f) => (decision.fields?.has(f) ?? true) && !decision.rowFields?.has(f) && !filtered.has(f),
  );
  return { fields: new Set(granted), role };
}

/** Build a Citadel app; throws ConfigError or DestructiveSyncError when it cannot start. */
export async function createApp(input: CreateAppInput = {}): Promise<CitadelApp> {
  checkAppInput(input);
  const config = validateConfig(input.config ?? {});
  const log = input.options?.log ?? ((message, error) => console.error(`citadel: ${message}`, error ?? ""));
  const settings = config.auth.enabled ? authSettings(config) : undefined;
  const schema = compileSchema(
    config.data as SchemaJSON,
    config.auth.enabled,
    config.tenancy,
    Object.keys(config.auth.roles),
  );
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const keys = input.options?.encryptionKeys;
  attachKeyring(schema, keys ?? env?.[KEYS_ENV], keys === undefined ? KEYS_ENV : "options.encryptionKeys");
  const models = buildModels(schema);
  checkRedacted(config.audit.redact, models);
  const tenancy = tenancyOf(config, schema.tenancy);
  // Roles are compiled (and so validated) even while the guard is off.
  const fieldRules = Object.fromEntries(
    Object.entries(config.data.entities ?? {}).flatMap(([name, e]) =>
      e.config?.field_rules ? [[name, e.config.field_rules] as const] : [],
    ),
  );
  const roles = compileRoles(config.auth, models, { superadminRole: tenancy?.superadminRole, fieldRules });
  schema.indices.push(...policyIndexes(schema, roles));
  const rolesGuard = new Guard(roles, models);
  const guard = guardEnforced(config) ? rolesGuard : undefined;
  if (!guard && models.size > 0) log(openWarning(config));
  // the tenant scope wraps whatever the guard grants, and holds with the guard off too (§6.1)
  const accessFor = (subject: Subject): Access => {
    const access = guard && !subject.trusted ? guardedAccess(guard, subject) : openAccess(subject);
    return tenancy ? tenantAccess(access, tenancy) : access;
  };
  const runtime = input.runtime ?? (await defaultRuntime());
  const opened = await openDatabase(input.connection, runtime.connector);
  const { db, dialect, url } = opened;
  // created before auth, whose writes to users are mutations like any other (§7.2, §8.1)
  const events = new DataEvents();
  let auth: AuthModule | undefined;
  let audit: AuditTrail | undefined;
  try {
    await syncSchema(db, dialect, schema, { destructive: input.options?.destructive });
    // before auth, whose trusted user and key management it records
    if (config.audit.enabled) {
      audit = await AuditTrail.open(db, config, models, guard?.defaultRole);
      audit.attach(events, config.audit.reads);
    }
    const trail = audit;
    const rateLimitStore = input.options?.rateLimitStore;
    auth =
      settings &&
      (await createAuth({
        db,
        settings,
        users: models.get("users")!,
        log,
        rateLimitStore,
        connectionUrl: url,
        argon2: runtime.argon2,
        tenancy: tenancy && { ...tenancy, model: models.get(tenancy.entity)! },
        events,
        record: trail && ((entry, trx) => trail.record(entry, trx)),
        registrable:
          guard && registrableFields(guard, settings.defaultRoleRegister, models.get("users")!.visibleFields),
      }));
  } catch (error) {
    await db.destroy().catch(() => {});
    throw connectionProblem(opened, error) ?? error;
  }
  const engine = new DataEngine(db, models, events);
  let feed: FeedHub | undefined;
  try {
    // after the audit trail: every transaction takes the trail's head, then the outbox's, in that order
    if (config.feed.enabled) feed = await openFeed(db, events, models, config.feed, settings?.secret, log);
  } catch (error) {
    await db.destroy().catch(() => {});
    throw connectionProblem(opened, error) ?? error;
  }
  const reportInput = { guard: rolesGuard, db, models, config, tenancy };
  let report: AccessReport | undefined;
  /** The access report (§12.2), computed once when first asked: the config does not change while the app runs. */
  const cachedReport = () => {
    report ??= accessReport(reportInput);
    return report;
  };
  const hono = httpApp({
    config,
    db,
    engine,
    auth,
    guard,
    accessFor,
    tenancy,
    audit,
    feed,
    log: (e) => log("unexpected error", e),
    logLine: (line) => log(line),
    remoteAddress: runtime.remoteAddress,
    accessReport: cachedReport,
    roleView: (role, widest) => roleView(reportInput, role, widest),
    version: CITADEL_VERSION,
  });

  const app: CitadelApp = {
    fetch: async (request, env) => hono.fetch(request, env),
    config,
    db,
    engine,
    audit,
    module: { data: dataModule(engine), auth: auth ?? disabledAuth() },
    explain: (query) => explain(rolesGuard, db, new Set(models.keys()), query, tenancy),
    accessReport: cachedReport,
    feed,
    close: async () => {
      await feed?.close();
      await db.destroy();
    },
  };
  if (!(await isSeeded(db)))
    try {
      await input.options?.seed?.({ app, db });
      await markSeeded(db);
    } catch (error) {
      await db.destroy();
      throw error;
    }
  return app;
}
