/**
 * Monitoring's HTTP side (§7.5): after each request, what it was (the matched route and status), whether it
 * was refused (401, 403) or rate limited (429), whether it named a privileged field or another tenant's
 * account, and one structured JSON line per denial and failed login. Observing never changes the answer.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { actorOf } from "../audit/index.js";
import { CitadelError, ForbiddenError, ValidationError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { PERMISSIONS } from "../guard/compile.js";
import { bindingOf, type Tenancy } from "../guard/tenancy.js";
import {
  idsNamedBy,
  idsOfWhere,
  namesAnotherTenant,
  refusedFields,
  refusedOwner,
  writtenFields,
} from "../metrics/incidents.js";
import type { Monitor } from "../metrics/monitor.js";
import { bodyRead, readJson } from "./body.js";
import { ACTION_OF, denialOf, LOGIN_PATH } from "./denials.js";
import { queryParams } from "./query-string.js";

export interface HttpMonitorOptions {
  monitor: Monitor;
  /** the entities: a denial's `entity` label is one of them or "" (bounded label values) */
  entities: ReadonlySet<string>;
  /** the configured roles: a denial's `role` label is one of them, "other" (an external token's) or "" */
  roles: ReadonlySet<string>;
  tenancy: Tenancy | undefined;
  maxBodyBytes: number;
  /** where the JSON lines of denials and failed logins go (the app's `log` option) */
  logLine(line: string): void;
  /** an observation that failed, as an unexpected error */
  logError(error: unknown): void;
}

const DATA_PREFIX = "/api/data/";
const WRITES = new Set(["POST", "PATCH", "PUT"]);
/** Hono's method of `use()` middleware: never the route that answers. */
const MIDDLEWARE_METHOD = "ALL";
const MAX_MESSAGE = 300;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The route that answered, as registered (`/api/data/:entity/:id`): bounded, unlike the raw path. */
function answeringRoute(c: Context): { method: string; path: string } | undefined {
  // the first route handler matched answered: handlers never call next()
  return matchedRoutes(c).find((r) => r.method !== MIDDLEWARE_METHOD);
}

/** The route's parameters, matched segment by segment (middleware cannot read them after the handler). */
function paramsOf(pattern: string, path: string): Record<string, string> {
  const names = pattern.split("/");
  const values = path.split("/");
  const params: Record<string, string> = {};
  names.forEach((name, i) => {
    if (!name.startsWith(":") || values[i] === undefined) return;
    try {
      params[name.slice(1)] = decodeURIComponent(values[i]);
    } catch {
      params[name.slice(1)] = values[i];
    }
  });
  return params;
}

/** A query-string or body option that carries JSON as text (`where={"a":1}`), parsed; anything else as it is. */
function json(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

/** The where a data route's body carries: the body itself (count, exists, delete many) or its `where`. */
function whereInBody(method: string, route: string, params: Record<string, string>, body: unknown): unknown {
  if (route.endsWith("/fn/count") || route.endsWith("/fn/exists") || (method === "DELETE" && !params.id)) return body;
  if (route.endsWith("/query") || (method === "PATCH" && !params.id))
    return isObject(body) ? json(body.where) : undefined;
  return undefined;
}

export function monitorMiddleware(options: HttpMonitorOptions): MiddlewareHandler {
  const { monitor, entities, roles, tenancy, maxBodyBytes } = options;

  const logLine = (c: Context, event: Record<string, unknown>, error: CitadelError, route: string) => {
    const subject: Subject | undefined = c.get("subject");
    const { ip, ...actor } = actorOf(subject);
    options.logLine(
      JSON.stringify({
        at: new Date().toISOString(),
        ...event,
        status: error.status,
        method: c.req.method,
        route,
        ...actor,
        ip,
        request_id: subject?.request?.id ?? null,
        message: error.message.slice(0, MAX_MESSAGE),
      }),
    );
  };

  /** A refused write naming a privileged field: a user's role, the tenant scope, another user as owner. */
  const escalates = (error: CitadelError, entity: string, body: unknown): boolean => {
    if (error instanceof ValidationError) return tenancy !== undefined && tenancy.field in error.fields;
    if (!(error instanceof ForbiddenError)) return false;
    if (refusedOwner(error.message)) return true;
    if (entity === "users" && refusedFields(error.message).includes("role")) return true;
    const written = writtenFields(body);
    return (
      (entity === "users" && written.has("role")) ||
      (tenancy?.scoped.has(entity) === true && written.has(tenancy.field))
    );
  };

  /** §6.5: a caller bound to one account (or none) naming another account by path, where, `with` or body. */
  const crossesTenants = (c: Context, route: string, params: Record<string, string>, body: unknown): boolean => {
    const subject: Subject | undefined = c.get("subject");
    if (!tenancy || !subject || !route.startsWith(DATA_PREFIX)) return false;
    const binding = bindingOf(tenancy, subject);
    if (binding.kind === "all") return false;
    const own = binding.kind === "tenant" ? Number(binding.id) : undefined;
    const query = queryParams(c.req.url);
    const where = json(query.get("where")?.[0]);
    const ids = [
      ...idsNamedBy(where, tenancy.field),
      ...idsNamedBy(json(query.get("with")?.[0]), tenancy.field),
      ...idsNamedBy(body, tenancy.field),
    ];
    if (params.entity === tenancy.entity) {
      if (params.id !== undefined && /^\d{1,16}$/.test(params.id)) ids.push(Number(params.id));
      ids.push(...idsOfWhere(where), ...idsOfWhere(whereInBody(c.req.method, route, params, body)));
    }
    return namesAnotherTenant(ids, own);
  };

  /** A 401 or 403: a failed login, or a denial counted by its labels; either way one log line. */
  const refusal = (c: Context, error: CitadelError, route: string) => {
    if (error.status === 401 && c.req.path === LOGIN_PATH) {
      monitor.loginFailures++;
      return logLine(c, { event: "auth.login_failed" }, error, route);
    }
    const reason = denialOf(error, c);
    if (!reason) return;
    const subject: Subject | undefined = c.get("subject");
    const { entity: named, permission } = error.details;
    const labels = {
      reason,
      role: subject?.role === undefined ? "" : roles.has(subject.role) ? subject.role : "other",
      entity: typeof named === "string" && entities.has(named) ? named : "",
      permission: typeof permission === "string" && PERMISSIONS.includes(permission) ? permission : "",
    };
    monitor.denials.inc(labels);
    logLine(c, { event: ACTION_OF[labels.reason], ...labels }, error, route);
  };

  const observe = async (c: Context) => {
    const status = c.res.status;
    const answering = answeringRoute(c);
    const route = answering ? `${answering.method} ${answering.path}` : "none";
    monitor.requests.inc({ route, status: String(status) });
    if (status === 429) monitor.rateLimited++;
    const error = c.error instanceof CitadelError && c.error.status === status ? c.error : undefined;

    if (error && (status === 401 || status === 403)) refusal(c, error, route);

    if (!answering?.path.startsWith(DATA_PREFIX)) return;
    const params = paramsOf(answering.path, c.req.path);
    const refusedWrite = error !== undefined && WRITES.has(c.req.method) && (status === 400 || status === 403);
    let body = bodyRead(c);
    // a write refused before its body was read (403 comes before 400) may still name a privileged field; only
    // entities that have one are worth the read
    const entity = params.entity ?? "";
    if (body === undefined && refusedWrite && (entity === "users" || tenancy?.scoped.has(entity)))
      body = await readJson(c, maxBodyBytes).catch(() => undefined);
    if (error && refusedWrite && escalates(error, entity, body)) monitor.escalationAttempts++;
    if (crossesTenants(c, answering.path, params, body)) monitor.crossTenantAttempts++;
  };

  return async (c, next) => {
    await next();
    try {
      await observe(c);
    } catch (error) {
      options.logError(error);
    }
  };
}
