/**
 * `/api/data` routes (§2), canonical and under bknd's `/api/data/entity` prefix. Handlers are thin: parse the
 * request → call the caller's scoped accessor (`engine.as(access)`, which enforces the guard) → shape the response.
 */
import { type Context, Hono } from "hono";
import type { DataEngine } from "../data/engine.js";
import { BadRequestError, NotFoundError } from "../errors.js";
import type { Access } from "../guard/access.js";
import type { QueryLimits, RawListQuery } from "../query/options.js";
import type { AuthVariables } from "./auth-middleware.js";
import { readJson } from "./body.js";
import { queryParams, singleParam } from "./query-string.js";

/**
 * Mounted behind the subject middleware: who asks, and the guard's access for it. A data route leaves its
 * engine on the request for monitoring (monitor.ts), which runs after the answer.
 */
export type DataEnv = { Variables: AuthVariables & { access: Access } };

export interface DataRoutesOptions {
  engine: DataEngine;
  limits: QueryLimits;
  maxBodyBytes: number;
  /** `GET /:entity/changes` (§8), when the change feed is on */
  changes?: (c: Context<DataEnv>) => Promise<Response>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Route parameters (the prefixes are built in a loop, so Hono cannot type them). */
const param = (c: Context, name: string): string => c.req.param(name) ?? "";

/** Ids are positive integers; anything else cannot name a row (404, like a missing row). */
function parseId(value: string | undefined): number {
  if (!value || !/^[1-9]\d{0,15}$/.test(value)) throw new NotFoundError();
  return Number(value);
}

/** Every list option from the query string; `select` and `with` may repeat (`select=a&select=b`). */
function rawFromQuery(c: Context): RawListQuery {
  const params = queryParams(c.req.url);
  const single = (key: string) => singleParam(params, key);
  const all = (key: string) => {
    const values = params.get(key);
    if (!values || values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values.join(",");
  };
  return {
    where: single("where"),
    sort: single("sort"),
    select: all("select"),
    with: all("with"),
    limit: single("limit"),
    offset: single("offset"),
    count: single("count"),
  };
}

const whereParam = (c: Context) => singleParam(queryParams(c.req.url), "where");

/** The where of a delete-many: the JSON body. bknd 0.20's `api.data.deleteMany` sends "[object Object]". */
async function deleteWhere(read: Promise<unknown>): Promise<unknown> {
  try {
    return await read;
  } catch (error) {
    if (!(error instanceof BadRequestError)) throw error;
    throw new BadRequestError(
      `where: expected a JSON body (${error.message}); bknd 0.20's api.data.deleteMany() sends "[object Object]": call api.data.delete(["entity", name], JSON.stringify(where)) instead`,
      { path: "where" },
    );
  }
}

export function dataRoutes({ engine, limits, maxBodyBytes, changes }: DataRoutesOptions): Hono<DataEnv> {
  const routes = new Hono<DataEnv>();
  /** The body, read only once the accessor has found the write allowed (403 comes before 400). */
  const body = (c: Context) => () => readJson(c, maxBodyBytes);
  const data = (c: Context<DataEnv>) => engine.as(c.get("access"), limits);
  const entity = (c: Context) => param(c, "entity");
  const id = (c: Context) => parseId(param(c, "id"));

  for (const prefix of ["/entity/:entity", "/:entity"]) {
    routes.get(`${prefix}/count`, async (c) =>
      c.json({ data: { count: await data(c).count(entity(c), whereParam(c)) } }),
    );
    routes.get(`${prefix}/exists`, async (c) =>
      c.json({ data: { exists: await data(c).exists(entity(c), whereParam(c)) } }),
    );
    routes.post(`${prefix}/fn/count`, async (c) =>
      c.json({ entity: entity(c), count: await data(c).count(entity(c), await body(c)()) }),
    );
    routes.post(`${prefix}/fn/exists`, async (c) =>
      c.json({ entity: entity(c), exists: await data(c).exists(entity(c), await body(c)()) }),
    );
    routes.post(`${prefix}/query`, async (c) => {
      const input = (await body(c)()) ?? {};
      if (!isObject(input)) throw new BadRequestError("expected a JSON object with where, sort, limit, …");
      return c.json(await data(c).list(entity(c), input));
    });

    if (changes) routes.get(`${prefix}/changes`, changes);
    routes.get(`${prefix}/:id/:relation`, async (c) =>
      c.json(await data(c).related(entity(c), id(c), param(c, "relation"), rawFromQuery(c))),
    );
    routes.get(`${prefix}/:id`, async (c) =>
      c.json({ data: await data(c).readOne(entity(c), id(c), rawFromQuery(c)) }),
    );
    routes.get(prefix, async (c) => c.json(await data(c).list(entity(c), rawFromQuery(c))));

    routes.post(prefix, async (c) => c.json({ data: await data(c).create(entity(c), body(c)) }, 201));
    routes.patch(`${prefix}/:id`, async (c) => c.json({ data: await data(c).updateOne(entity(c), id(c), body(c)) }));
    routes.patch(prefix, async (c) => c.json({ data: await data(c).updateMany(entity(c), body(c)) }));
    routes.delete(`${prefix}/:id`, async (c) => c.json({ data: await data(c).deleteOne(entity(c), id(c)) }));
    routes.delete(prefix, async (c) =>
      c.json({ data: await data(c).deleteMany(entity(c), () => deleteWhere(body(c)())) }),
    );
  }
  return routes;
}
