/** Assembles the Hono app: monitoring, error mapping, CORS, who-is-asking, then the route groups. No logic of its own. */
import { Hono } from "hono";
import type { AuditTrail } from "../audit/index.js";
import type { AuthModule } from "../auth/index.js";
import type { ValidatedConfig } from "../config/schema.js";
import type { DataEngine } from "../data/engine.js";
import { ownUser } from "../data/own-user.js";
import type { Db } from "../db/connection.js";
import { NotFoundError } from "../errors.js";
import type { FeedHub } from "../feed/index.js";
import type { Access, Subject } from "../guard/access.js";
import type { Guard } from "../guard/guard.js";
import type { AccessReport, RoleView } from "../guard/report.js";
import { bindingOf, type Tenancy } from "../guard/tenancy.js";
import { Monitor } from "../metrics/index.js";
import type { Runtime } from "../runtime.js";
import { adminPage } from "./admin-page.js";
import { httpAudit } from "./audit.js";
import { type AuthVariables, subjectMiddleware } from "./auth-middleware.js";
import { authRoutes, CREDENTIAL_FREE_PATHS } from "./auth-routes.js";
import { corsMiddleware } from "./cors.js";
import { dataRoutes } from "./data-routes.js";
import { type ErrorLogger, errorResponse } from "./errors.js";
import { changesRoute } from "./feed-route.js";
import { monitorMiddleware } from "./monitor.js";
import { type OpenApiAudience, openApiDocument } from "./openapi.js";
import { systemRoutes } from "./system-routes.js";

export interface HttpAppParts {
  config: ValidatedConfig;
  db: Db;
  engine: DataEngine;
  auth: AuthModule | undefined;
  /** undefined while the guard is disabled */
  guard: Guard | undefined;
  /** the guard's per-request view for a subject (open access when the guard is off), within its tenant */
  accessFor(subject: Subject): Access;
  /** tenant isolation (§6), when it is on */
  tenancy: Tenancy | undefined;
  /** the audit trail (§7), when it is on */
  audit: AuditTrail | undefined;
  /** the change feed (§8), when it is on */
  feed: FeedHub | undefined;
  log: ErrorLogger;
  /** where one JSON line per denial and failed login goes (§7.5): the app's `log` option */
  logLine: (line: string) => void;
  remoteAddress: Runtime["remoteAddress"];
  /** the static access report (§12.2), computed once when first asked (the admin page's matrix) */
  accessReport(): AccessReport;
  /** one role's view (§12.2): at its widest, or for a caller without claims — what the OpenAPI document follows */
  roleView(role: string, widest: boolean): RoleView;
  /** Citadel's version, for the OpenAPI document */
  version: string;
}

export function httpApp(parts: HttpAppParts) {
  const { config, db, engine, auth, guard, accessFor, tenancy, log, remoteAddress } = parts;
  // one monitor per app: tests and multi-app servers run many in one process (§7.5)
  const apiKeys = auth?.apiKeys;
  const feedHub = parts.feed;
  const monitor = new Monitor({
    secretKeyFromBrowser: apiKeys && (() => apiKeys.incidents().secret_key_from_browser),
    feed: feedHub && (() => feedHub.counts()),
  });
  parts.audit?.onAppended((count) => {
    monitor.auditEntries += count;
  });
  const audit = httpAudit(parts.audit, log, guard?.defaultRole);
  const hono = new Hono<{ Variables: AuthVariables & { access: Access } }>();
  const maxBodyBytes = config.server.max_body_bytes;
  const limits = {
    defaultLimit: config.data.default_limit,
    maxLimit: config.data.max_limit,
    maxRowsPerRequest: config.data.max_rows_per_request,
    maxResponseBytes: config.data.max_response_bytes,
  };
  const origin = config.server.cors.origin;
  const corsOrigins = origin === undefined ? [] : Array.isArray(origin) ? origin : [origin];

  hono.use(
    "*",
    monitorMiddleware({
      monitor,
      entities: new Set(engine.models.keys()),
      roles: new Set(Object.keys(config.auth.roles)),
      defaultRole: guard?.defaultRole,
      tenancy,
      engine,
      maxBodyBytes,
      logLine: parts.logLine,
      logError: log,
    }),
  );
  hono.onError(async (error, c) => {
    await audit?.denial(c, error);
    return errorResponse(c, error, log, parts.logLine);
  });
  hono.notFound((c) => errorResponse(c, new NotFoundError("no such route"), log, parts.logLine));
  const cors = corsMiddleware(corsOrigins);
  if (cors) hono.use("/api/*", cors);
  hono.use(
    "/api/*",
    subjectMiddleware({
      auth,
      cookieName: config.auth.cookie.name,
      trustProxy: config.server.trust_proxy,
      corsOrigins,
      remoteAddress,
      ignoresInvalidCredentials: (path) => CREDENTIAL_FREE_PATHS.some((p) => path === `/api/auth${p}`),
    }),
  );
  hono.use("/api/data/*", async (c, next) => {
    c.set("access", accessFor(c.get("subject")));
    await next();
  });
  const feed = parts.feed;
  const changes = feed && changesRoute({ hub: feed, engine, limits, heartbeatMs: config.feed.heartbeat_ms });
  hono.route("/api/data", dataRoutes({ engine, limits, maxBodyBytes, changes }));
  if (auth)
    hono.route(
      "/api/auth",
      authRoutes({
        auth,
        maxBodyBytes,
        remoteAddress,
        audit,
        tenantField: tenancy?.field,
        shownUser: (user, subject) => ownUser(db, accessFor(subject), guard, user),
      }),
    );
  const documents = new Map<string, Record<string, unknown>>();
  const features = {
    auth: auth !== undefined,
    register: auth !== undefined && config.auth.allow_register && tenancy?.register !== "closed",
    feed: feed !== undefined,
    apiKeys: apiKeys !== undefined,
    audit: parts.audit !== undefined,
    guard: guard !== undefined,
  };
  hono.get("/api/system/openapi.json", (c) => {
    const subject = c.get("subject");
    // the API as the caller may use it: all of it for a trusted caller or an open app, else its role's — at the
    // widest for a user (any claims), exactly for a caller without claims (no token: a key, or nobody)
    const all = !guard || subject.trusted === true;
    const role = subject.role ?? guard?.defaultRole ?? null;
    const claims = subject.user !== undefined;
    const bound = tenancy !== undefined && bindingOf(tenancy, subject).kind !== "all";
    const known = role !== null && guard?.roles.has(role) === true;
    // one document per configured role: a role the config does not know (an identity provider's) gets none
    const key = JSON.stringify(all ? ["all", subject.trusted === true] : [known ? role : null, claims, bound]);
    let document = documents.get(key);
    if (!document) {
      const audience: OpenApiAudience = all
        ? { kind: "all", system: subject.trusted === true }
        : { kind: "role", role, view: known ? parts.roleView(role!, claims) : undefined, bound };
      document = openApiDocument({ models: engine.models, config, version: parts.version, features }, audience);
      documents.set(key, document);
    }
    return c.json(document);
  });
  if (guard || apiKeys || parts.audit)
    hono.route(
      "/api/system",
      systemRoutes({
        guard,
        db,
        entities: new Set(engine.models.keys()),
        apiKeys,
        tenancy,
        auditTrail: parts.audit,
        monitor,
        limits,
        maxBodyBytes,
        accessReport: parts.accessReport,
        userById: auth && ((id) => auth.publicUser(id)),
      }),
    );
  if (config.admin.enabled) hono.route("/_admin", adminPage());
  return hono;
}
