/**
 * `GET /api/system/openapi.json` (§12.5): an OpenAPI 3.1 document generated from the schema and the routes — the
 * API as the caller's role may use it. Its entities, operations and fields are those the access report (§12.2,
 * the guard's own decisions) gives the role, so the document tells no caller about an entity or field it
 * cannot reach; a trusted caller (and every caller while the guard is off) gets the whole API.
 */
import type { ValidatedConfig } from "../config/schema.js";
import type { Models } from "../data/models.js";
import { ACTIONS, type Action, type FieldAccess, type FieldAction, type RoleView } from "../guard/report.js";
import type { CompiledField } from "../schema/compiled.js";

type Json = Record<string, unknown>;

/**
 * Whose API the document describes: every operation (`all`), or one role's — what its view (the guard's
 * decisions, §12.2) gives it; no view (no role, a role the config does not know): no data at all.
 */
export type OpenApiAudience =
  /** every data route; the system routes too for a trusted caller (with the guard off nobody else holds them) */
  | { kind: "all"; system: boolean }
  | {
      kind: "role";
      role: string | null;
      view: RoleView | undefined;
      /** bound to one account (§6): the routes that cover every account (metrics, the chain's verdict) refuse it */
      bound: boolean;
    };

export interface OpenApiInput {
  models: Models;
  config: ValidatedConfig;
  version: string;
  /** the optional route groups that are on */
  features: { auth: boolean; register: boolean; feed: boolean; apiKeys: boolean; audit: boolean; guard: boolean };
}

const ERROR_CODES = [
  "bad_request",
  "validation_failed",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "payload_too_large",
  "rate_limited",
  "internal",
];

const WHERE_HELP =
  'JSON: `{ "field": value }`; operators `$eq $ne $gt $gte $lt $lte $in $nin $like $ilike $isnull $between` ' +
  "(`*` is the wildcard of `$like`), combinators `$and $or $not`; top-level keys are ANDed. It only ever narrows " +
  "what the guard lets the caller see.";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const nullable = (schema: Json, required: boolean): Json =>
  required || schema.type === undefined ? schema : { ...schema, type: [schema.type, "null"] };

/** One field as a JSON Schema (3.1 is JSON Schema 2020-12). */
function fieldSchema(field: CompiledField): Json {
  const c = field.config;
  const described = c.description ?? c.label;
  const base = ((): Json => {
    switch (field.type) {
      case "primary":
      case "reference":
        return { type: "integer" };
      case "timestamp":
        return { type: "string", format: "date-time" };
      case "number":
        return { type: c.integer ? "integer" : "number", minimum: c.minimum, maximum: c.maximum };
      case "boolean":
        return { type: "boolean" };
      case "date":
        return { type: "string", format: c.type === "date" ? "date" : "date-time" };
      case "enum":
        return { type: "string", enum: c.options?.values ?? [] };
      case "json":
        return {};
      default:
        return {
          type: "string",
          minLength: c.minLength,
          maxLength: c.maxLength,
          pattern: c.pattern,
          format: c.format,
        };
    }
  })();
  const schema = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined));
  return {
    ...nullable(schema, field.type === "primary" || c.required === true),
    ...(described ? { description: described } : {}),
  };
}

/** What the audience may do with each entity and field, from the report (or everything). */
function accessOf(input: OpenApiInput, audience: OpenApiAudience) {
  const { models } = input;
  const view = audience.kind === "role" ? audience.view : undefined;
  const may = (entity: string, action: Action) => {
    if (audience.kind === "all") return true;
    const decision = view?.decisions[entity]?.[action]?.decision;
    return decision !== undefined && decision !== "deny";
  };
  const field = (entity: string, name: string, action: FieldAction): FieldAccess => {
    if (audience.kind === "all")
      return action === "read" || !models.get(entity)!.entity.fields.get(name)!.system ? "all" : "none";
    return view?.fields[entity]?.[name]?.[action] ?? "none";
  };
  const holds = (permission: string) =>
    audience.kind === "all" ? audience.system : (view?.system.includes(permission) ?? false);
  return { may, field, holds };
}

const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [String(code), { $ref: `#/components/responses/E${code}` }]));

/** Build the document for one audience. */
export function openApiDocument(input: OpenApiInput, audience: OpenApiAudience): Json {
  const { models, config, features } = input;
  const { may, field, holds } = accessOf(input, audience);
  const schemas: Json = {
    Error: {
      type: "object",
      required: ["error"],
      properties: {
        error: {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { type: "string", enum: ERROR_CODES },
            message: { type: "string" },
            fields: { type: "object", additionalProperties: { type: "array", items: { type: "string" } } },
            permission: { type: "string" },
            entity: { type: "string" },
          },
        },
      },
    },
    Where: { type: "object", description: WHERE_HELP },
    ListMeta: {
      type: "object",
      properties: Object.fromEntries(
        ["items", "count", "total", "limit", "offset"].map((k) => [k, { type: "integer", minimum: 0 }]),
      ),
    },
  };
  const paths: Json = {};
  const parameters = {
    id: { name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } },
    where: { name: "where", in: "query", description: WHERE_HELP, schema: { type: "string" } },
    sort: { name: "sort", in: "query", description: "`-created_at,title`: at most 8 keys", schema: { type: "string" } },
    limit: {
      name: "limit",
      in: "query",
      schema: { type: "integer", minimum: 1, maximum: config.data.max_limit, default: config.data.default_limit },
    },
    offset: { name: "offset", in: "query", schema: { type: "integer", minimum: 0, default: 0 } },
    select: { name: "select", in: "query", description: "`id,title`: fields to return", schema: { type: "string" } },
    with: {
      name: "with",
      in: "query",
      description: "relations to include, each read under its own permission",
      schema: { type: "string" },
    },
    count: { name: "count", in: "query", description: "`false`: no totals (one query)", schema: { type: "boolean" } },
  };
  const P = (name: keyof typeof parameters) => ({ $ref: `#/components/parameters/${name}` });
  const one = (name: string) => json({ type: "object", required: ["data"], properties: { data: ref(name) } });
  const many = (name: string) =>
    json({ type: "object", required: ["data"], properties: { data: { type: "array", items: ref(name) } } });

  for (const [entity, model] of models) {
    if (!ACTIONS.some((a) => may(entity, a))) continue;
    const visible = model.visibleFields.map((name) => [name, model.entity.fields.get(name)!] as const);
    // a field the server sets (the tenant column of a bound caller) is not the caller's to send: 400 if it does
    const shaped = (action: FieldAction) =>
      visible.filter(
        ([name]) => !["none", ...(action === "read" ? [] : ["server"])].includes(field(entity, name, action)),
      );
    schemas[entity] = {
      type: "object",
      properties: Object.fromEntries(shaped("read").map(([name, f]) => [name, fieldSchema(f)])),
    };
    for (const action of ["create", "update"] as const) {
      if (!may(entity, action)) continue;
      const writable = shaped(action);
      schemas[`${entity}_${action}`] = {
        type: "object",
        additionalProperties: false,
        properties: Object.fromEntries(writable.map(([name, f]) => [name, fieldSchema(f)])),
        ...(action === "create"
          ? {
              required: writable
                .filter(([, f]) => f.config.required && f.config.default_value === undefined)
                .map(([name]) => name),
            }
          : {}),
      };
    }
    const base = `/api/data/${entity}`;
    const op = (summary: string, extra: Json) => ({ tags: [entity], summary, ...extra });
    const collection: Json = {};
    const item: Json = {};
    if (may(entity, "read")) {
      collection.get = op(`List ${entity} the caller may read`, {
        operationId: `list_${entity}`,
        parameters: [P("where"), P("sort"), P("limit"), P("offset"), P("select"), P("with"), P("count")],
        responses: {
          "200": {
            description: "the page",
            content: json({
              type: "object",
              required: ["data", "meta"],
              properties: { data: { type: "array", items: ref(entity) }, meta: ref("ListMeta") },
            }),
          },
          ...errorResponses(400, 401, 403, 429),
        },
      });
      item.get = op(`Read one of ${entity}`, {
        operationId: `read_${entity}`,
        parameters: [P("select"), P("with")],
        responses: { "200": { description: "the row", content: one(entity) }, ...errorResponses(400, 401, 403, 404) },
      });
      for (const [fn, answer] of [
        ["count", { count: { type: "integer", minimum: 0 } }],
        ["exists", { exists: { type: "boolean" } }],
      ] as const)
        paths[`${base}/${fn}`] = {
          get: op(`${fn === "count" ? "Count" : "Whether there are"} ${entity} the caller may read`, {
            operationId: `${fn}_${entity}`,
            parameters: [P("where")],
            responses: {
              "200": {
                description: fn,
                content: json({ type: "object", properties: { data: { type: "object", properties: answer } } }),
              },
              ...errorResponses(400, 401, 403),
            },
          }),
        };
      paths[`${base}/query`] = {
        post: op(`List ${entity} with the query in the body`, {
          operationId: `query_${entity}`,
          requestBody: {
            content: json({
              type: "object",
              properties: {
                where: ref("Where"),
                sort: {},
                limit: { type: "integer", minimum: 1, maximum: config.data.max_limit },
                offset: { type: "integer", minimum: 0 },
                select: { type: "array", items: { type: "string" } },
                with: {},
                count: { type: "boolean" },
              },
            }),
          },
          responses: { "200": { description: "the page", content: many(entity) }, ...errorResponses(400, 401, 403) },
        }),
      };
      if (features.feed)
        paths[`${base}/changes`] = {
          get: op(`Changes to ${entity} the caller may read, as Server-Sent Events`, {
            operationId: `changes_${entity}`,
            parameters: [P("where")],
            responses: {
              "200": {
                description: "create, update and delete events",
                content: { "text/event-stream": { schema: { type: "string" } } },
              },
              ...errorResponses(400, 401, 403, 429),
            },
          }),
        };
      for (const [name, relation] of model.entity.relations) {
        if (!may(relation.target, "read")) continue;
        paths[`${base}/{id}/${name}`] = {
          get: op(`The ${name} of one of ${entity}`, {
            operationId: `${entity}_${name}`,
            parameters: [P("id"), P("where"), P("sort"), P("limit"), P("offset")],
            responses: {
              "200": {
                description: "the related rows",
                content: relation.cardinality === "one" ? one(relation.target) : many(relation.target),
              },
              ...errorResponses(400, 401, 403, 404),
            },
          }),
        };
      }
    }
    if (may(entity, "create"))
      collection.post = op(`Create one of ${entity}, or several (all or nothing)`, {
        operationId: `create_${entity}`,
        requestBody: {
          required: true,
          content: json({ oneOf: [ref(`${entity}_create`), { type: "array", items: ref(`${entity}_create`) }] }),
        },
        responses: {
          "201": { description: "created", content: json({ type: "object", properties: { data: {} } }) },
          ...errorResponses(400, 401, 403, 409, 413),
        },
      });
    if (may(entity, "update")) {
      item.patch = op(`Update one of ${entity}`, {
        operationId: `update_${entity}`,
        requestBody: { required: true, content: json(ref(`${entity}_update`)) },
        responses: {
          "200": { description: "updated", content: one(entity) },
          ...errorResponses(400, 401, 403, 404, 409, 413),
        },
      });
      collection.patch = op(`Update the ${entity} a where matches`, {
        operationId: `update_many_${entity}`,
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["update", "where"],
            properties: { update: ref(`${entity}_update`), where: ref("Where") },
          }),
        },
        responses: {
          "200": { description: "updated", content: many(entity) },
          ...errorResponses(400, 401, 403, 409, 413),
        },
      });
    }
    if (may(entity, "delete")) {
      item.delete = op(`Delete one of ${entity}`, {
        operationId: `delete_${entity}`,
        responses: {
          "200": { description: "deleted", content: json({ type: "object", properties: { data: {} } }) },
          ...errorResponses(401, 403, 404),
        },
      });
      collection.delete = op(`Delete the ${entity} a where matches`, {
        operationId: `delete_many_${entity}`,
        requestBody: { required: true, content: json(ref("Where")) },
        responses: {
          "200": { description: "deleted", content: json({ type: "object", properties: { data: {} } }) },
          ...errorResponses(400, 401, 403),
        },
      });
    }
    if (Object.keys(collection).length > 0) paths[base] = collection;
    if (Object.keys(item).length > 0) paths[`${base}/{id}`] = { parameters: [P("id")], ...item };
  }

  if (features.auth) authPaths(paths, features.register);
  systemPaths(paths, holds, features, audience.kind === "role" && audience.bound);
  paths["/api/system/openapi.json"] = {
    get: {
      tags: ["system"],
      summary: "This document: the API as the caller may use it",
      operationId: "openapi",
      responses: { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) } },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "Citadel API",
      version: input.version,
      description:
        audience.kind === "all"
          ? "Every route of this app."
          : `The routes and fields ${audience.role === null ? "a caller without a role" : `the role "${audience.role}"`} may use; other callers get their own document.`,
    },
    paths,
    components: {
      schemas,
      parameters,
      responses: Object.fromEntries(
        [400, 401, 403, 404, 409, 413, 429].map((code) => [
          `E${code}`,
          { description: String(code), content: json(ref("Error")) },
        ]),
      ),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "a user token (JWT) or an API key (pk_… / sk_…)" },
        apikey: { type: "apiKey", in: "header", name: "apikey" },
        cookie: { type: "apiKey", in: "cookie", name: config.auth.cookie.name },
      },
    },
    security: [{}, { bearer: [] }, { apikey: [] }, { cookie: [] }],
  };
}

/** `/api/auth` (§3). */
function authPaths(paths: Json, register: boolean) {
  const credentials = json({
    type: "object",
    required: ["email", "password"],
    properties: { email: { type: "string", format: "email" }, password: { type: "string" } },
  });
  const session = {
    description: "the user and a token",
    content: json({ type: "object", properties: { user: { type: "object" }, token: { type: "string" } } }),
  };
  const op = (summary: string, operationId: string, extra: Json) => ({
    tags: ["auth"],
    summary,
    operationId,
    ...extra,
  });
  if (register)
    paths["/api/auth/password/register"] = {
      post: op("Register with email and password", "register", {
        requestBody: { required: true, content: credentials },
        responses: { "201": session, ...errorResponses(400, 403, 409, 429) },
      }),
    };
  paths["/api/auth/password/login"] = {
    post: op("Log in with email and password", "login", {
      requestBody: { required: true, content: credentials },
      responses: { "200": session, ...errorResponses(400, 401, 429) },
    }),
  };
  paths["/api/auth/me"] = {
    get: op("The signed-in user", "me", {
      responses: {
        "200": { description: "the user", content: json({ type: "object", properties: { user: { type: "object" } } }) },
        ...errorResponses(401),
      },
    }),
  };
  paths["/api/auth/logout"] = {
    post: op("Log out: revokes the user's tokens", "logout", { responses: { "200": { description: "logged out" } } }),
  };
  paths["/api/auth/password/change"] = {
    post: op("Change the password: revokes older tokens", "change_password", {
      requestBody: {
        required: true,
        content: json({
          type: "object",
          required: ["password", "new_password"],
          properties: { password: { type: "string" }, new_password: { type: "string" } },
        }),
      },
      responses: { "200": session, ...errorResponses(400, 401, 429) },
    }),
  };
  paths["/api/auth/strategies"] = {
    get: op("The sign-in strategies", "strategies", { responses: { "200": { description: "strategies" } } }),
  };
}

/** `/api/system` (§4.2): the routes of the system permissions the audience holds. */
function systemPaths(
  paths: Json,
  holds: (permission: string) => boolean,
  features: OpenApiInput["features"],
  bound: boolean,
) {
  const op = (summary: string, operationId: string, permission: string, extra: Json) => ({
    tags: ["system"],
    summary: `${summary} (needs ${permission})`,
    operationId,
    ...extra,
  });
  const ok = (description: string) => ({ description, content: json({ type: "object" }) });
  // explain and the report need the guard; metrics need the system routes, there with the guard, keys or audit
  const system = features.guard || features.apiKeys || features.audit;
  if (features.guard && holds("system.explain"))
    paths["/api/system/explain"] = {
      get: op("What the guard decides for a role, permission and entity, and its SQL", "explain", "system.explain", {
        parameters: ["role", "user", "permission", "entity", "tenant", "key"].map((name) => ({
          name,
          in: "query",
          schema: { type: "string" },
        })),
        responses: { "200": ok("the explanation"), ...errorResponses(400, 401, 403) },
      }),
    };
  if (features.apiKeys && holds("system.keys.manage")) {
    paths["/api/system/keys"] = {
      get: op("List API keys (never a key or its hash)", "list_keys", "system.keys.manage", {
        responses: { "200": ok("the keys"), ...errorResponses(401, 403) },
      }),
      post: op("Create an API key, shown once", "create_key", "system.keys.manage", {
        requestBody: { required: true, content: json({ type: "object", required: ["name", "kind"] }) },
        responses: { "201": ok("the key"), ...errorResponses(400, 401, 403) },
      }),
    };
    paths["/api/system/keys/{id}/rotate"] = {
      post: op("Replace a key; the old one works for grace_seconds", "rotate_key", "system.keys.manage", {
        parameters: [{ $ref: "#/components/parameters/id" }],
        responses: { "201": ok("the new key"), ...errorResponses(400, 401, 403, 404, 409) },
      }),
    };
    paths["/api/system/keys/{id}"] = {
      delete: op("Revoke a key at once", "revoke_key", "system.keys.manage", {
        parameters: [{ $ref: "#/components/parameters/id" }],
        responses: { "200": ok("the revoked key"), ...errorResponses(401, 403, 404) },
      }),
    };
  }
  if (features.audit && holds("system.audit.read"))
    paths["/api/system/audit"] = {
      get: op("The audit trail", "audit", "system.audit.read", {
        parameters: ["where", "sort", "limit", "offset"].map((name) => ({ $ref: `#/components/parameters/${name}` })),
        responses: { "200": ok("the entries"), ...errorResponses(400, 401, 403) },
      }),
    };
  if (features.audit && holds("system.audit.read") && !bound)
    paths["/api/system/audit/verify"] = {
      get: op("Verify the audit trail's hash chain", "audit_verify", "system.audit.read", {
        responses: { "200": ok("the verdict: ok, entries, the first broken entry"), ...errorResponses(401, 403) },
      }),
    };
  if (features.guard && holds("system.admin"))
    paths["/api/system/report"] = {
      get: op("The static access report (citadel check)", "report", "system.admin", {
        responses: { "200": ok("the report"), ...errorResponses(401, 403) },
      }),
    };
  if (system && holds("system.metrics.read") && !bound)
    paths["/api/system/metrics"] = {
      get: op("Prometheus metrics", "metrics", "system.metrics.read", {
        responses: {
          "200": { description: "metrics", content: { "text/plain": { schema: { type: "string" } } } },
          ...errorResponses(401, 403),
        },
      }),
    };
}
