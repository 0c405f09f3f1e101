/**
 * Monitoring's HTTP side (§7.5): after each request, what it was (the matched route and status), whether it
 * was refused (401, 403) or rate limited (429), whether it named a privileged field or another tenant's
 * account or row, and one structured JSON line per denial and failed login. Observing never changes the
 * answer, and never fails on what a client sent: that is the client's error, not the server's.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { normalizeEmail, USERS } from "../auth/users.js";
import type { DataEngine } from "../data/engine.js";
import { countRows } from "../data/write-checks.js";
import { Saturated } from "../db/bounded-driver.js";
import { CitadelError, ForbiddenError, ValidationError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { PERMISSIONS } from "../guard/compile.js";
import { bindingOf, type Tenancy, type TenantBinding } from "../guard/tenancy.js";
import {
  idsNamedBy,
  idsOfWhere,
  idsWrittenTo,
  namesAnotherTenant,
  refusedFields,
  refusedOwner,
  rowsOutsideTenant,
  rowsWhere,
  textsWrittenTo,
  writtenFields,
} from "../metrics/incidents.js";
import type { Monitor } from "../metrics/monitor.js";
import type { Filter } from "../query/ast.js";
import { bodyRead, readJson } from "./body.js";
import { ACTION_OF, denialOf, isFailedLogin, REGISTER_PATH, refusedActor } from "./denials.js";
import { type QueryParams, queryParams } from "./query-string.js";

export interface HttpMonitorOptions {
  monitor: Monitor;
  /** the entities: a denial's `entity` label is one of them or "" (bounded label values) */
  entities: ReadonlySet<string>;
  /** the configured roles: a denial's `role` label is one of them, "other" (an external token's) or "" */
  roles: ReadonlySet<string>;
  /** the role the guard applies to a caller without one (§4.1), as denials name it; undefined: no guard */
  defaultRole: string | undefined;
  tenancy: Tenancy | undefined;
  /** the engine whose rows a cross-tenant attempt is checked against, after the answer (§6.5) */
  engine: DataEngine;
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
/** A row id as a data route takes it (data-routes.ts): anything else was answered 404 before any lookup. */
const ROW_ID = /^[1-9]\d{0,15}$/;
/** The keys of one related entity a refused write is probed for (a bulk create may name thousands). */
const MAX_PROBED_REFERENCES = 100;

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

/**
 * The query string as the routes read it. One they refused (400: a NUL, a lone surrogate) is read as plain
 * text instead, for what its `where` named: a client's bad input is no failure of monitoring.
 */
function queryOf(url: string): QueryParams {
  try {
    return queryParams(url);
  } catch {
    const params: QueryParams = new Map();
    try {
      for (const [name, value] of new URL(url).searchParams) {
        const values = params.get(name);
        if (values) values.push(value);
        else params.set(name, [value]);
      }
    } catch {
      // not a URL: nothing named
    }
    return params;
  }
}

/** The where a data route's body carries: the body itself (count, exists, delete many) or its `where`. */
function whereInBody(method: string, route: string, params: Record<string, string>, body: unknown): unknown {
  if (route.endsWith("/fn/count") || route.endsWith("/fn/exists") || (method === "DELETE" && !params.id)) return body;
  if (route.endsWith("/query") || (method === "PATCH" && !params.id))
    return isObject(body) ? json(body.where) : undefined;
  return undefined;
}

/** The `with` a query's body carries (a list's nested wheres). */
const withInBody = (route: string, body: unknown): unknown =>
  route.endsWith("/query") && isObject(body) ? json(body.with) : undefined;

/** The rows a write's body sets: a create's row or rows, an update's row, an update-many's `update`. */
function rowsInBody(method: string, route: string, params: Record<string, string>, body: unknown): unknown {
  if (method === "POST" && route.endsWith("/:entity")) return body;
  if (method === "PATCH") return params.id ? body : isObject(body) ? body.update : undefined;
  return undefined;
}

export function monitorMiddleware(options: HttpMonitorOptions): MiddlewareHandler {
  const { monitor, entities, roles, defaultRole, tenancy, maxBodyBytes } = options;

  const logLine = (c: Context, event: Record<string, unknown>, error: CitadelError, route: string) => {
    const subject: Subject | undefined = c.get("subject");
    const { ip, ...actor } = refusedActor(c, error, defaultRole);
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

  /**
   * §6.5: a caller bound to one account (or none) naming another account by path, where, `with` or body. Only
   * the parts the route reads are walked, each on its own budget (incidents.ts), the where first: padding
   * beside them, or nesting deeper than any where, cannot hide them.
   */
  const crossesTenants = (
    c: Context,
    tenancy: Tenancy,
    binding: TenantBinding,
    route: string,
    params: Record<string, string>,
    body: unknown,
  ): boolean => {
    const own = binding.kind === "tenant" ? Number(binding.id) : undefined;
    const { field } = tenancy;
    const query = queryOf(c.req.url);
    const where = json(query.get("where")?.[0]);
    const bodyWhere = whereInBody(c.req.method, route, params, body);
    const parts: (() => number[])[] = [
      () => idsNamedBy(where, field),
      () => idsNamedBy(bodyWhere, field),
      () => idsNamedBy(json(query.get("with")?.[0]), field),
      () => idsNamedBy(withInBody(route, body), field),
      () => idsWrittenTo(rowsInBody(c.req.method, route, params, body), field),
    ];
    if (params.entity === tenancy.entity)
      parts.push(
        () => (params.id !== undefined && /^\d{1,16}$/.test(params.id) ? [Number(params.id)] : []),
        () => idsOfWhere(where),
        () => idsOfWhere(bodyWhere),
      );
    return parts.some((part) => namesAnotherTenant(part(), own));
  };

  /**
   * Whether a row of another account was what a request named, when the answer cannot tell (§6.5): it is
   * asked only then, once, trusted, and after the answer has gone (Monitor.later), so the answer is the same
   * whatever the rows, and waits for nothing. The question is the lookup's own tenant filter, negated
   * (incidents.ts).
   */
  const probeRows = (tenancy: Tenancy, binding: TenantBinding, entity: string, named: Filter) => {
    const { engine } = options;
    const outside = rowsOutsideTenant(tenancy, binding, entity, named);
    if (!outside) return;
    monitor.later(
      async () => {
        if ((await countRows(engine.db, entity, outside)) > 0) monitor.crossTenantAttempts++;
      },
      // a database too busy for the check drops it, as Monitor.later drops a flood's
      (error) => (error instanceof Saturated ? undefined : options.logError(error)),
    );
  };

  /** §6.5, §4.10: a row of another account named by id in the path (read, related rows, update, delete): a 404. */
  const probePath = (tenancy: Tenancy, binding: TenantBinding, params: Record<string, string>) => {
    const { entity, id } = params;
    if (entity === undefined || id === undefined || !ROW_ID.test(id) || !entities.has(entity)) return;
    probeRows(tenancy, binding, entity, rowsWhere("id", [Number(id)]));
  };

  /**
   * §6.5, §4.17: a write whose references name rows of another account is refused as one naming missing rows
   * (409). The keys it wrote are probed per related entity, the first MAX_PROBED_REFERENCES of each.
   */
  const probeReferences = (tenancy: Tenancy, binding: TenantBinding, entity: string, rows: unknown) => {
    const { engine } = options;
    if (!entities.has(entity)) return;
    const named = new Map<string, Set<number>>();
    for (const relation of engine.model(entity).entity.relations.values()) {
      if (relation.path.kind !== "local") continue;
      const ids = named.get(relation.target) ?? new Set<number>();
      for (const id of idsWrittenTo(rows, relation.path.column))
        if (ids.size < MAX_PROBED_REFERENCES && ROW_ID.test(String(id))) ids.add(id);
      named.set(relation.target, ids);
    }
    for (const [target, ids] of named) if (ids.size > 0) probeRows(tenancy, binding, target, rowsWhere("id", [...ids]));
  };

  /**
   * §6.3: emails stay unique across accounts, so a 409 may say one is taken in another account: the one
   * cross-tenant signal allowed, and counted when the user holding it is outside the caller's account.
   */
  const probeEmails = (tenancy: Tenancy, binding: TenantBinding, rows: unknown) => {
    const emails = textsWrittenTo(rows, "email", MAX_PROBED_REFERENCES, normalizeEmail);
    if (emails.length > 0) probeRows(tenancy, binding, USERS, rowsWhere("email", emails));
  };

  /** A 401 or 403: a failed login, or a denial counted by its labels; either way one log line. */
  const refusal = (c: Context, error: CitadelError, route: string) => {
    if (isFailedLogin(error, c)) {
      monitor.loginFailures++;
      return logLine(c, { event: "auth.login_failed" }, error, route);
    }
    const reason = denialOf(error, c);
    if (!reason) return;
    const { entity: named, permission } = error.details;
    const { role } = refusedActor(c, error, defaultRole);
    const labels = {
      reason,
      role: role === null ? "" : roles.has(role) ? role : "other",
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

    if (status === 409 && answering?.path === REGISTER_PATH) {
      const subject: Subject | undefined = c.get("subject");
      const binding = tenancy && subject && bindingOf(tenancy, subject);
      if (binding && binding.kind !== "all") probeEmails(tenancy!, binding, bodyRead(c));
    }
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

    const subject: Subject | undefined = c.get("subject");
    if (!tenancy || !subject) return;
    const binding = bindingOf(tenancy, subject);
    if (binding.kind === "all") return;
    if (crossesTenants(c, tenancy, binding, answering.path, params, body)) monitor.crossTenantAttempts++;
    else if (status === 404) probePath(tenancy, binding, params);
    else if (status === 409 && WRITES.has(c.req.method)) {
      const rows = rowsInBody(c.req.method, answering.path, params, body);
      probeReferences(tenancy, binding, entity, rows);
      if (entity === USERS) probeEmails(tenancy, binding, rows);
    }
  };

  return async (c, next) => {
    await next();
    try {
      await observe(c);
    } catch (error) {
      // a client's bad input is answered as such (4xx), never logged as the server's failure
      if (!(error instanceof CitadelError && error.status < 500)) options.logError(error);
    }
  };
}
