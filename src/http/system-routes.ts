/** `/api/system` routes: `explain` for callers granted `system.explain` (implicit_allow roles have it). */
import { Hono } from "hono";
import type { Db } from "../db/connection.js";
import { ForbiddenError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { explain } from "../guard/explain.js";
import type { Guard } from "../guard/guard.js";

export type SystemEnv = { Variables: { subject: Subject } };

export function systemRoutes(guard: Guard, db: Db, entities: ReadonlySet<string>): Hono<SystemEnv> {
  const routes = new Hono<SystemEnv>();
  routes.get("/explain", (c) => {
    if (!guard.grantsSystem(c.get("subject"), "system.explain")) throw new ForbiddenError("system.explain");
    const q = c.req.query();
    return c.json({ data: explain(guard, db, entities, { role: q.role, permission: q.permission, entity: q.entity }) });
  });
  return routes;
}
