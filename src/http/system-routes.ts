/**
 * `/api/system` routes (§4.2): `explain` under `system.explain`, and API key management (§5.5) under
 * `system.keys.manage` (implicit_allow roles have both). Without a guard nobody holds a system permission but
 * a trusted caller (a secret key without a role), so that an app without roles never opens key management.
 */
import { type Context, Hono } from "hono";
import type { ApiKeys } from "../auth/index.js";
import type { Db } from "../db/connection.js";
import { ForbiddenError, NotFoundError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { explain } from "../guard/explain.js";
import type { Guard } from "../guard/guard.js";
import { readJson } from "./body.js";

export type SystemEnv = { Variables: { subject: Subject } };

export interface SystemRoutesOptions {
  /** undefined while the guard is disabled */
  guard: Guard | undefined;
  db: Db;
  entities: ReadonlySet<string>;
  /** undefined unless `auth.api_keys.enabled` */
  apiKeys: ApiKeys | undefined;
  maxBodyBytes: number;
}

/** A key id from the path; anything but a positive integer is a key that does not exist. */
function keyId(c: Context): number {
  const raw = c.req.param("id") ?? "";
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new NotFoundError("no such API key");
  return Number(raw);
}

export function systemRoutes({ guard, db, entities, apiKeys, maxBodyBytes }: SystemRoutesOptions): Hono<SystemEnv> {
  const routes = new Hono<SystemEnv>();
  const requirePermission = (c: Context<SystemEnv>, permission: string) => {
    const subject = c.get("subject");
    const granted = guard ? guard.grantsSystem(subject, permission) : subject.trusted === true;
    if (!granted) throw new ForbiddenError(permission);
  };

  if (guard)
    routes.get("/explain", (c) => {
      requirePermission(c, "system.explain");
      const q = c.req.query();
      return c.json({
        data: explain(guard, db, entities, { role: q.role, permission: q.permission, entity: q.entity }),
      });
    });

  if (apiKeys) {
    const manage = "system.keys.manage";
    routes.post("/keys", async (c) => {
      requirePermission(c, manage);
      return c.json({ data: await apiKeys.create(await readJson(c, maxBodyBytes)) }, 201);
    });
    routes.get("/keys", async (c) => {
      requirePermission(c, manage);
      return c.json({ data: await apiKeys.list() });
    });
    routes.post("/keys/:id/rotate", async (c) => {
      requirePermission(c, manage);
      const id = keyId(c);
      return c.json({ data: await apiKeys.rotate(id, await readJson(c, maxBodyBytes)) }, 201);
    });
    routes.delete("/keys/:id", async (c) => {
      requirePermission(c, manage);
      return c.json({ data: await apiKeys.revoke(keyId(c)) });
    });
  }
  return routes;
}
