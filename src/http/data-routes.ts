/**
 * `/api/data` routes (§2), canonical and under bknd's `/api/data/entity` prefix. Handlers are thin:
 * parse → ask the guard for a scope → call the engine → shape the response.
 */
import { type Context, Hono } from "hono";
import type { DataEngine, WriteScopes } from "../data/engine.js";
import { BadRequestError, NotFoundError } from "../errors.js";
import type { Access, DataPermission } from "../guard/access.js";
import { type Filter, TRUE } from "../query/ast.js";
import {
  followRelation,
  parseListQuery,
  parseWhereInput,
  type QueryLimits,
  type RawListQuery,
  type ReadableView,
  type Scope,
} from "../query/options.js";
import { readJson } from "./body.js";
import { queryParams } from "./query-string.js";

export type DataEnv = { Variables: { access: Access } };

export interface DataRoutesOptions {
  engine: DataEngine;
  limits: QueryLimits;
  maxBodyBytes: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Route parameters (the prefixes are built in a loop, so Hono cannot type them). */
const param = (c: Context, name: string): string => c.req.param(name) ?? "";

/** Ids are positive integers; anything else cannot name a row (404, like a missing row). */
function parseId(value: string | undefined): number {
  if (!value || !/^[1-9]\d{0,15}$/.test(value)) throw new NotFoundError();
  return Number(value);
}

function requireWhere(where: unknown, path: string): unknown {
  if (where === undefined || where === null || (isObject(where) && Object.keys(where).length === 0))
    throw new BadRequestError(`${path}: a non-empty where is required for a write to many rows`, { path });
  return where;
}

/** Every list option from the query string; `select` and `with` may repeat (`select=a&select=b`). */
function rawFromQuery(c: Context): RawListQuery {
  const params = queryParams(c.req.url);
  const first = (key: string) => params.get(key)?.[0];
  const all = (key: string) => {
    const values = params.get(key) ?? params.get(`${key}[]`);
    if (!values || values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values.join(",");
  };
  return {
    where: first("where"),
    sort: first("sort"),
    select: all("select"),
    with: all("with"),
    limit: first("limit"),
    offset: first("offset"),
  };
}

/** What a caller without read permission may name in a where: the id alone. */
const ID_ONLY: Scope = { filter: TRUE, fields: new Set(["id"]) };

const whereParam = (c: Context) => queryParams(c.req.url).get("where")?.[0];

/** The where of a delete-many: the JSON body. bknd 0.20's `api.data.deleteMany` sends "[object Object]". */
async function deleteWhere(read: Promise<unknown>): Promise<unknown> {
  try {
    return requireWhere(await read, "where");
  } catch (error) {
    if (!(error instanceof BadRequestError) || error.message.startsWith("where:")) throw error;
    throw new BadRequestError(
      `where: expected a JSON body (${error.message}); bknd 0.20's api.data.deleteMany() sends "[object Object]": call api.data.delete(["entity", name], JSON.stringify(where)) instead`,
      { path: "where" },
    );
  }
}

export function dataRoutes({ engine, limits, maxBodyBytes }: DataRoutesOptions): Hono<DataEnv> {
  const routes = new Hono<DataEnv>();
  const body = (c: Context) => readJson(c, maxBodyBytes);

  const readView = (c: Context<DataEnv>, entity: string, id?: number): ReadableView => {
    engine.model(entity);
    const access = c.get("access");
    const scope = access.require("data.entity.read", entity, id);
    return engine.view(entity, scope, (target) => access.find("data.entity.read", target));
  };

  const writeScopes = (c: Context<DataEnv>, permission: DataPermission, entity: string, id?: number): WriteScopes => {
    engine.model(entity);
    const access = c.get("access");
    return {
      permission,
      write: access.require(permission, entity, id),
      read: access.find("data.entity.read", entity, id),
      readOf: (target) => access.find("data.entity.read", target),
    };
  };

  /**
   * The where of a write to many rows: only readable fields may be named (only `id` without read
   * permission, so a write cannot probe what the caller may not read), and it must narrow.
   */
  const manyWhere = (entity: string, scopes: WriteScopes, input: unknown): Filter => {
    const where = parseWhereInput(
      engine.view(entity, scopes.read ?? ID_ONLY, () => undefined),
      input,
    );
    if (where.kind === "const" && where.value)
      throw new BadRequestError("where: matches every row; a write to many rows needs a narrowing condition", {
        path: "where",
      });
    return where;
  };

  const count = async (c: Context<DataEnv>, where: unknown) => {
    const view = readView(c, param(c, "entity"));
    return engine.count(view, parseWhereInput(view, where));
  };
  const exists = async (c: Context<DataEnv>, where: unknown) => {
    const view = readView(c, param(c, "entity"));
    return engine.exists(view, parseWhereInput(view, where));
  };
  const list = async (c: Context<DataEnv>, raw: RawListQuery) => {
    const view = readView(c, param(c, "entity"));
    return c.json(await engine.list(view, parseListQuery(view, raw, limits)));
  };

  for (const prefix of ["/entity/:entity", "/:entity"]) {
    routes.get(`${prefix}/count`, async (c) => c.json({ data: { count: await count(c, whereParam(c)) } }));
    routes.get(`${prefix}/exists`, async (c) => c.json({ data: { exists: await exists(c, whereParam(c)) } }));
    routes.post(`${prefix}/fn/count`, async (c) =>
      c.json({ entity: param(c, "entity"), count: await count(c, await body(c)) }),
    );
    routes.post(`${prefix}/fn/exists`, async (c) =>
      c.json({ entity: param(c, "entity"), exists: await exists(c, await body(c)) }),
    );
    routes.post(`${prefix}/query`, async (c) => {
      const input = (await body(c)) ?? {};
      if (!isObject(input)) throw new BadRequestError("expected a JSON object with where, sort, limit, …");
      return list(c, input);
    });

    routes.get(`${prefix}/:id/:relation`, async (c) => {
      const entity = param(c, "entity");
      const id = parseId(param(c, "id"));
      const parent = readView(c, entity, id);
      const relation = parent.entity.relations.get(param(c, "relation"));
      if (!relation) throw new NotFoundError(`unknown relation "${param(c, "relation")}"`);
      await engine.readOne(parent, id, { with: [] });
      readView(c, relation.target); // 403 when the related entity is not readable at all
      const target = followRelation(parent, relation);
      // the key linking the rows is a field the caller may not read: as if there were no such relation
      if (!target) throw new NotFoundError(`unknown relation "${param(c, "relation")}"`);
      const base = await engine.relatedFilter(entity, id, relation);
      return c.json(await engine.list(target, parseListQuery(target, rawFromQuery(c), limits), base));
    });

    routes.get(`${prefix}/:id`, async (c) => {
      const id = parseId(param(c, "id"));
      const view = readView(c, param(c, "entity"), id);
      const query = parseListQuery(view, rawFromQuery(c), limits);
      return c.json({ data: await engine.readOne(view, id, query) });
    });

    routes.get(prefix, (c) => list(c, rawFromQuery(c)));

    routes.post(prefix, async (c) => {
      const entity = param(c, "entity");
      const scopes = writeScopes(c, "data.entity.create", entity);
      return c.json({ data: await engine.create(entity, await body(c), scopes) }, 201);
    });

    routes.patch(`${prefix}/:id`, async (c) => {
      const entity = param(c, "entity");
      const id = parseId(param(c, "id"));
      const scopes = writeScopes(c, "data.entity.update", entity, id);
      return c.json({ data: await engine.updateOne(entity, id, await body(c), scopes) });
    });

    routes.patch(prefix, async (c) => {
      const entity = param(c, "entity");
      const scopes = writeScopes(c, "data.entity.update", entity);
      const input = await body(c);
      if (!isObject(input)) throw new BadRequestError("expected a JSON object { update, where }");
      const where = manyWhere(entity, scopes, requireWhere(input.where, "where"));
      return c.json({ data: await engine.updateMany(entity, where, input.update, scopes) });
    });

    routes.delete(`${prefix}/:id`, async (c) => {
      const entity = param(c, "entity");
      const id = parseId(param(c, "id"));
      const scopes = writeScopes(c, "data.entity.delete", entity, id);
      return c.json({ data: await engine.deleteOne(entity, id, scopes) });
    });

    routes.delete(prefix, async (c) => {
      const entity = param(c, "entity");
      const scopes = writeScopes(c, "data.entity.delete", entity);
      const where = manyWhere(entity, scopes, await deleteWhere(body(c)));
      return c.json({ data: await engine.deleteMany(entity, where, scopes) });
    });
  }
  return routes;
}
