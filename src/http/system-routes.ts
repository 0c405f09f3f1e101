/**
 * `/api/system` routes (§4.2): `explain` under `system.explain`, API key management (§5.5) under
 * `system.keys.manage`, the audit trail (§7.4) under `system.audit.read` and the metrics (§7.5) under
 * `system.metrics.read` (implicit_allow roles have them all). Without a guard nobody holds a system permission but
 * a trusted caller (a secret key without a role), so that an app without roles never opens key management.
 */
import { type Context, Hono } from "hono";
import { type AuditTrail, actorOf } from "../audit/index.js";
import { listEntries } from "../audit/query.js";
import type { ApiKeys } from "../auth/index.js";
import type { Row } from "../data/codec.js";
import type { Db } from "../db/connection.js";
import { ForbiddenError, fieldError, NotFoundError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { explain } from "../guard/explain.js";
import type { Guard } from "../guard/guard.js";
import type { AccessReport } from "../guard/report.js";
import { bindingOf, type Tenancy } from "../guard/tenancy.js";
import { type Exporter, loadExporter, type Monitor } from "../metrics/index.js";
import type { QueryLimits } from "../query/options.js";
import { readJson } from "./body.js";
import { queryParams, singleParam } from "./query-string.js";

export type SystemEnv = { Variables: { subject: Subject } };

export interface SystemRoutesOptions {
  /** undefined while the guard is disabled */
  guard: Guard | undefined;
  db: Db;
  entities: ReadonlySet<string>;
  /** undefined unless `auth.api_keys.enabled` */
  apiKeys: ApiKeys | undefined;
  /** tenant isolation (§6): a tenant admin explains and manages keys within its own account */
  tenancy: Tenancy | undefined;
  /** the audit trail (§7), when it is on: its entries are listed */
  auditTrail: AuditTrail | undefined;
  /** the app's counters (§7.5), served as Prometheus text */
  monitor: Monitor;
  limits: QueryLimits;
  maxBodyBytes: number;
  /** the static access report (§12.2), for the admin page's matrix under `system.admin` */
  accessReport: () => AccessReport;
  /** a user as the API shows it, to explain for (`?user=<id>`); undefined without auth */
  userById?: (id: number) => Promise<Row | undefined>;
}

/** A key id from the path; anything but a positive integer is a key that does not exist. */
function keyId(c: Context): number {
  const raw = c.req.param("id") ?? "";
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new NotFoundError("no such API key");
  return Number(raw);
}

/** An id (an account's, a key's) from a query string; anything else is a 400 naming the parameter. */
function idParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw fieldError(name, "expected an id");
  return Number(raw);
}

export function systemRoutes({
  guard,
  db,
  entities,
  apiKeys,
  tenancy,
  auditTrail,
  monitor,
  limits,
  maxBodyBytes,
  accessReport,
  userById,
}: SystemRoutesOptions): Hono<SystemEnv> {
  const routes = new Hono<SystemEnv>();
  /** Checks the permission; returns the caller's tenant (undefined: every tenant) for what it may see (§6). */
  const requirePermission = (c: Context<SystemEnv>, permission: string): number | undefined => {
    const subject = c.get("subject");
    const granted = guard ? guard.grantsSystem(subject, permission) : subject.trusted === true;
    if (!granted) throw new ForbiddenError(permission);
    const binding = tenancy ? bindingOf(tenancy, subject) : { kind: "all" as const };
    if (binding.kind === "all") return undefined;
    if (binding.kind === "none")
      throw new ForbiddenError(permission, undefined, "a caller without an account has no system access");
    return binding.id as number;
  };

  if (guard)
    routes.get("/explain", async (c) => {
      const within = requirePermission(c, "system.explain");
      const q = c.req.query();
      const keyParam = idParam(q.key, "key");
      // a tenant admin explains for its own account only, and only its own account's keys
      const found = keyParam === undefined ? undefined : (await apiKeys?.list(within))?.find((k) => k.id === keyParam);
      if (keyParam !== undefined && !found) throw new NotFoundError(`no API key has the id ${keyParam}`);
      const key = found && { id: found.id, kind: found.kind, tenant: found.tenant, role: apiKeys!.subject(found).role };
      // a user explained: its role, its account and the claims its token carries (a tenant admin: its own users)
      const userParam = idParam(q.user, "user");
      const user = userParam === undefined ? undefined : await userById?.(userParam);
      const tenantOfUser = (u: Row) => (tenancy ? (u[tenancy.field] as number | null) : null);
      if (userParam !== undefined && (!user || (within !== undefined && tenantOfUser(user) !== within)))
        throw new NotFoundError(`no user has the id ${userParam}`);
      const asked = idParam(q.tenant, "tenant");
      if (within !== undefined && asked !== undefined && asked !== within)
        throw new ForbiddenError(
          "system.explain",
          undefined,
          "a caller bound to one account explains for that account only",
        );
      const tenant = within ?? (user ? (tenantOfUser(user) ?? undefined) : asked);
      const role = user ? ((user.role as string | null) ?? undefined) : q.role;
      const claims = user && { id: user.id, email: user.email, role: user.role };
      const query = { role, permission: q.permission, entity: q.entity, tenant, key, user: claims };
      return c.json({ data: explain(guard, db, entities, query, tenancy) });
    });

  if (guard)
    routes.get("/report", (c) => {
      requirePermission(c, "system.admin");
      return c.json({ data: accessReport() });
    });

  if (auditTrail)
    routes.get("/audit/verify", async (c) => {
      // the chain covers every account: a caller bound to one may not read its verdict (§6)
      if (requirePermission(c, "system.audit.read") !== undefined)
        throw new ForbiddenError("system.audit.read", undefined, "the audit chain covers every account");
      return c.json({ data: await auditTrail.verify() });
    });

  if (auditTrail)
    routes.get("/audit", async (c) => {
      const within = requirePermission(c, "system.audit.read");
      const params = queryParams(c.req.url);
      const single = (key: string) => singleParam(params, key);
      const raw = { where: single("where"), sort: single("sort"), limit: single("limit"), offset: single("offset") };
      return c.json(await listEntries(db, raw, limits, within));
    });

  // prom-client is loaded at the first scrape: an app never scraped pays nothing for it
  let exporter: Promise<Exporter | undefined> | undefined;
  routes.get("/metrics", async (c) => {
    // a secret key reads them whatever its role (the guard's asSecretKey, §7.5); the counters cover every
    // account: a caller bound to one may not read them (§6)
    if (requirePermission(c, "system.metrics.read") !== undefined)
      throw new ForbiddenError("system.metrics.read", undefined, "the metrics cover every account");
    exporter ??= loadExporter(monitor).catch((error: unknown) => {
      exporter = undefined;
      throw error;
    });
    const loaded = await exporter;
    if (!loaded) throw new NotFoundError("metrics are served on Node and Bun only");
    return c.body(await loaded.metrics(), 200, { "content-type": loaded.contentType });
  });

  if (apiKeys) {
    const manage = "system.keys.manage";
    /** Who manages the key, for the audit trail (the keys module records it). */
    const manager = (c: Context<SystemEnv>) => {
      const subject = c.get("subject");
      // a key is a principal: the guard says which keys a manager may hand out (§5.5)
      const mayActAs = (role: string | undefined) =>
        guard ? guard.mayHandOutKey(subject, role) : subject.trusted === true;
      return { actor: actorOf(subject, guard?.defaultRole), request_id: subject.request?.id ?? null, mayActAs };
    };
    routes.post("/keys", async (c) => {
      const within = requirePermission(c, manage);
      const created = await apiKeys.create(await readJson(c, maxBodyBytes), within, manager(c));
      return c.json({ data: created }, 201);
    });
    routes.get("/keys", async (c) => {
      const within = requirePermission(c, manage);
      return c.json({ data: await apiKeys.list(within) });
    });
    routes.post("/keys/:id/rotate", async (c) => {
      const within = requirePermission(c, manage);
      const id = keyId(c);
      const rotated = await apiKeys.rotate(id, await readJson(c, maxBodyBytes), within, manager(c));
      return c.json({ data: rotated }, 201);
    });
    routes.delete("/keys/:id", async (c) => {
      const within = requirePermission(c, manage);
      return c.json({ data: await apiKeys.revoke(keyId(c), within, manager(c)) });
    });
  }
  return routes;
}
