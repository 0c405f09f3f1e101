/** Turns the validated `{ entities, relations, indices }` JSON into the engine's CompiledSchema. */

import type { ValidatedConfig } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import type {
  ColumnType,
  CompiledEntity,
  CompiledField,
  CompiledForeignKey,
  CompiledRelation,
  CompiledSchema,
  CompiledTenancy,
} from "./compiled.js";
import { storedDateDefault } from "./dates.js";
import type { EntityJSON, SchemaJSON } from "./entity.js";
import type { FieldConfig } from "./fields.js";

export const SYSTEM_FIELDS = ["id", "created_at", "updated_at"] as const;
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
/** PostgreSQL keeps the first 63 bytes of a longer name and drops the rest without an error. */
export const MAX_NAME = 63;

/** A table or column name must be an identifier every engine keeps as written. */
function checkName(name: string, path: string, what: string): void {
  if (!IDENTIFIER.test(name)) throw new ConfigError(path, `${what} names are lowercase letters, digits and _`);
  if (name.length > MAX_NAME)
    throw new ConfigError(path, `"${name}" is ${name.length} characters long; ${what} names are at most ${MAX_NAME}`);
}

/**
 * Prefixes of the tables, indexes and triggers Citadel (`citadel_`, `idx_citadel_`, `policy_idx_`) and SQLite keep
 * for themselves: a user's index of the same name would stand in for one of Citadel's, on another table.
 */
const RESERVED_PREFIXES = ["citadel_", "idx_citadel_", "policy_idx_", "sqlite_"];
/** `/api/data/entity/:entity/...` is bknd's spelling of the data routes: an entity of that name could not be reached. */
const RESERVED_ENTITY = "entity";

/**
 * A table's or an index's name: an identifier outside the names Citadel and the engine keep. An entity named
 * `citadel_api_keys` would otherwise be served by the data routes on Citadel's own table.
 */
function checkTableName(name: string, path: string, what: string): void {
  checkName(name, path, what);
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p));
  if (prefix)
    throw new ConfigError(
      path,
      `"${name}": ${what} names starting with ${prefix} are reserved for Citadel's and the database's own`,
    );
  if (what !== "index" && name === RESERVED_ENTITY)
    throw new ConfigError(
      path,
      `"${name}" is reserved: /api/data/entity/... is the bknd form of every entity's routes`,
    );
}

/**
 * A name Citadel derives (an index, a constraint) within MAX_NAME: a longer one keeps its start and ends in a
 * hash of the whole (FNV-1a: a stable label, not a secret), so two long names never become one.
 */
export function derivedName(name: string): string {
  if (name.length <= MAX_NAME) return name;
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return `${name.slice(0, MAX_NAME - 9)}_${hash.toString(16).padStart(8, "0")}`;
}
const DEFAULT_WITH_LIMIT = 10;

/** The auth module's users entity; an app's `entity("users", {...})` adds fields to it. */
export const BUILTIN_USERS: EntityJSON = {
  type: "system",
  fields: {
    email: { type: "text", config: { required: true, unique: true, maxLength: 254, format: "email" } },
    role: { type: "text", config: { maxLength: 64 } },
    password_hash: { type: "text", config: { hidden: true } },
    // bumped on logout, password change and role change; a token carries the version it was issued at (§4.11)
    token_version: { type: "number", config: { hidden: true, integer: true } },
  },
};

/** The tenant entity when the schema does not declare it (§6): a name and an optional unique slug. */
export const BUILTIN_TENANT: EntityJSON = {
  type: "system",
  fields: {
    name: { type: "text", config: { required: true, minLength: 1, maxLength: 200 } },
    slug: { type: "text", config: { unique: true, maxLength: 64 } },
  },
};

type TenancyConfig = ValidatedConfig["tenancy"];

/** Which entities the tenancy config scopes; the tenant entity never, users always (§6). */
function scopedEntities(
  tenancy: TenancyConfig,
  entities: Map<string, CompiledEntity>,
  withUsers: boolean,
): CompiledTenancy {
  const path = "config.tenancy";
  if (!withUsers) throw new ConfigError(`${path}.enabled`, "tenant isolation needs auth (config.auth.enabled: true)");
  checkName(tenancy.field, `${path}.field`, "field");
  const listed = tenancy.entities === "*" ? [...entities.keys()] : [...tenancy.entities, "users"];
  if (tenancy.entities !== "*")
    tenancy.entities.forEach((name, i) => {
      if (!entities.has(name)) throw new ConfigError(`${path}.entities[${i}]`, `unknown entity "${name}"`);
      if (name === tenancy.entity)
        throw new ConfigError(`${path}.entities[${i}]`, `"${name}" is the tenant entity; it is never scoped`);
    });
  const scoped = new Set(listed.filter((name) => name !== tenancy.entity));
  for (const name of scoped) {
    const entity = entities.get(name)!;
    if (entity.fields.has(tenancy.field))
      throw new ConfigError(
        `config.data.entities.${name}.fields.${tenancy.field}`,
        `"${tenancy.field}" is the tenant scope column (config.tenancy.field) and is added automatically`,
      );
    entity.fields.set(tenancy.field, {
      name: tenancy.field,
      type: "reference",
      config: {},
      system: false,
      hidden: false,
    });
    entity.tenantField = tenancy.field;
  }
  // filled in once the indexes are known (compileSchema)
  return { entity: tenancy.entity, field: tenancy.field, scoped, tenantFields: [], unique: new Set() };
}

/**
 * §6.3: a unique value of a scoped entity is unique within its tenant, so a 409 never tells one tenant what
 * another stored. Users' emails stay global: login finds a user by email alone.
 */
function uniqueIndex(e: CompiledEntity, name: string, columns: string[], schema: CompiledSchema): void {
  const perTenant = e.tenantField !== undefined && !(e.name === "users" && columns.join() === "email");
  if (!perTenant) {
    schema.indices.push({ name, entity: e.name, columns, unique: true });
    return;
  }
  schema.retiredIndices.push(name);
  const field = e.tenantField!;
  schema.indices.push(
    { name: derivedName(`${name}_per_${field}`), entity: e.name, columns: [field, ...columns], unique: true },
    // rows of no account (server code's, a superadmin's, those from before tenancy) stay unique among themselves:
    // both engines let NULLs repeat in a unique index, so the composite one alone would not hold them
    { name: derivedName(`${name}_without_${field}`), entity: e.name, columns, unique: true, whereNull: field },
  );
}

function systemField(name: string, type: ColumnType): CompiledField {
  return { name, type, config: {}, system: true, hidden: false };
}

function userField(name: string, type: ColumnType, config: FieldConfig): CompiledField {
  // a date-time default is stored as a write would store it (UTC), so a defaulted row compares like a written one
  const stored = storedDateDefault(type, config);
  const normalized = stored === config.default_value ? config : { ...config, default_value: stored };
  return { name, type, config: normalized, system: false, hidden: config.hidden === true };
}

function compileEntity(name: string, json: EntityJSON, path: string): CompiledEntity {
  checkTableName(name, path, "entity");
  const fields = new Map<string, CompiledField>([["id", systemField("id", "primary")]]);
  for (const [fieldName, field] of Object.entries(json.fields)) {
    const fieldPath = `${path}.fields.${fieldName}`;
    if ((SYSTEM_FIELDS as readonly string[]).includes(fieldName))
      throw new ConfigError(fieldPath, `"${fieldName}" is a system field and is added automatically`);
    checkName(fieldName, fieldPath, "field");
    fields.set(fieldName, userField(fieldName, field.type, field.config ?? {}));
  }
  fields.set("created_at", systemField("created_at", "timestamp"));
  fields.set("updated_at", systemField("updated_at", "timestamp"));
  for (const f of [...fields.values()])
    if (f.config.encrypted) encryptedField(name, f, fields, `${path}.fields.${f.name}`);
  const sortField = json.config?.sort_field ?? "id";
  if (!fields.has(sortField)) throw new ConfigError(`${path}.config.sort_field`, `unknown field "${sortField}"`);
  if (fields.get(sortField)!.encrypted)
    throw new ConfigError(`${path}.config.sort_field`, `"${sortField}" is encrypted: its ciphertext has no order`);
  return {
    name,
    fields,
    relations: new Map(),
    defaultSort: { field: sortField, dir: json.config?.sort_dir ?? "asc" },
  };
}

/**
 * §10: an encrypted field: text or json, never unique (each value has a fresh IV, so equal values differ in
 * storage: the database cannot compare them; README), and a searchable one gets its hidden blind index column.
 */
function encryptedField(entity: string, f: CompiledField, fields: Map<string, CompiledField>, path: string) {
  const at = `${path}.config.encrypted`;
  if (f.type !== "text" && f.type !== "json")
    throw new ConfigError(at, `only text and json fields can be encrypted ("${f.name}" is ${f.type})`);
  if (f.config.unique)
    throw new ConfigError(
      `${path}.config.unique`,
      `"${f.name}" is encrypted: a unique index cannot compare ciphertexts (each value has its own random IV)`,
    );
  const searchable = f.config.encrypted?.searchable === true;
  if (searchable && f.type !== "text") throw new ConfigError(`${at}.searchable`, "only text fields can be searchable");
  const previous = f.config.renamedFrom;
  f.encrypted = { context: `${entity}.${f.name}`, ...(previous ? { previous: `${entity}.${previous}` } : {}) };
  if (!searchable) return;
  const index = `${f.name}__bidx`;
  checkName(index, at, "blind index column");
  if (fields.has(index)) throw new ConfigError(at, `"${index}" is the blind index column of "${f.name}"`);
  f.encrypted.index = index;
  // a renamed field's index column is renamed with it (sync would otherwise see a column to drop)
  const config = previous ? { renamedFrom: `${previous}__bidx` } : {};
  fields.set(index, { name: index, type: "text", config, system: false, hidden: true, indexOf: f.name });
}

/** A rename names a column the entity no longer has (field or key column), once; else sync could not tell what to do. */
function checkRenames(fields: Map<string, CompiledField>, path: string) {
  const claimed = new Set<string>();
  for (const f of fields.values()) {
    const from = f.config.renamedFrom;
    if (from === undefined) continue;
    const at = `${path}.fields.${f.name}.config.renamedFrom`;
    checkName(from, at, "field");
    if (fields.has(from)) throw new ConfigError(at, `"${from}" is still a field of this entity`);
    if (claimed.has(from)) throw new ConfigError(at, `another field is already renamed from "${from}"`);
    claimed.add(from);
  }
}

/**
 * The users entity: the built-in fields plus the app's. With roles configured, `role` takes only their names
 * (a 400 naming them, on every write path), stored as text as before, so adding a role needs no migration.
 */
function mergeUsers(declared: EntityJSON | undefined, roles: readonly string[]): EntityJSON {
  const builtin: EntityJSON["fields"] =
    roles.length === 0
      ? BUILTIN_USERS.fields
      : {
          ...BUILTIN_USERS.fields,
          role: { type: "enum", config: { options: { type: "strings", values: [...roles] } } },
        };
  for (const name of Object.keys(declared?.fields ?? {}))
    if (name in BUILTIN_USERS.fields)
      throw new ConfigError(`config.data.entities.users.fields.${name}`, `"${name}" is a built-in users field`);
  return { ...(declared ?? BUILTIN_USERS), fields: { ...builtin, ...declared?.fields } };
}

function addRelation(entity: CompiledEntity, relation: CompiledRelation, path: string) {
  if (entity.relations.has(relation.name) || entity.fields.has(relation.name))
    throw new ConfigError(
      path,
      `"${entity.name}" already has a field or relation named "${relation.name}" (set mappedBy/inversedBy)`,
    );
  entity.relations.set(relation.name, relation);
}

/**
 * Compile the schema; `withUsers` adds the built-in users entity (auth enabled) whose `role` is one of
 * `roles` when any are configured, `tenancy` the tenant entity and the scope column of every scoped entity (§6).
 */
export function compileSchema(
  json: SchemaJSON,
  withUsers: boolean,
  tenancy?: TenancyConfig,
  roles: readonly string[] = [],
): CompiledSchema {
  const entityJSON = { ...json.entities };
  if (withUsers || entityJSON.users) entityJSON.users = mergeUsers(entityJSON.users, roles);
  if (tenancy?.enabled) {
    checkTableName(tenancy.entity, "config.tenancy.entity", "entity");
    if (tenancy.entity === "users") throw new ConfigError("config.tenancy.entity", "users cannot be the tenant entity");
    entityJSON[tenancy.entity] ??= BUILTIN_TENANT;
  }

  const entities = new Map<string, CompiledEntity>();
  for (const [name, e] of Object.entries(entityJSON))
    entities.set(name, compileEntity(name, e, `config.data.entities.${name}`));

  const schema: CompiledSchema = { entities, junctions: [], indices: [], foreignKeys: [], retiredIndices: [] };
  if (tenancy?.enabled) {
    schema.tenancy = scopedEntities(tenancy, entities, withUsers);
    // an account that still has rows cannot be deleted from under them
    for (const entity of schema.tenancy.scoped)
      schema.foreignKeys.push({
        entity,
        column: tenancy.field,
        target: tenancy.entity,
        onDelete: "restrict",
        unique: false,
        required: false,
      });
  }
  for (const [key, r] of Object.entries(json.relations ?? {})) {
    const path = `config.data.relations.${key}`;
    const source = entities.get(r.source);
    const target = entities.get(r.target);
    if (!source) throw new ConfigError(`${path}.source`, `unknown entity "${r.source}"`);
    if (!target) throw new ConfigError(`${path}.target`, `unknown entity "${r.target}"`);
    const name = r.config.mappedBy ?? r.target;
    const inverse = r.config.inversedBy ?? r.source;
    const withLimit = r.config.with_limit ?? DEFAULT_WITH_LIMIT;
    if (r.type === "m:n") {
      const table = r.config.connectionTable ?? `${r.source}_${r.target}`;
      checkTableName(table, `${path}.config.connectionTable`, "table");
      if (entities.has(table) || schema.junctions.some((j) => j.table === table))
        throw new ConfigError(
          `${path}.config.connectionTable`,
          `the many-to-many table "${table}" is already the name of an entity or another relation's table`,
        );
      const left = `${r.source}_id`;
      const right = `${r.target}_id`;
      schema.junctions.push({
        table,
        left: { column: left, entity: r.source },
        right: { column: right, entity: r.target },
      });
      const path1 = { kind: "junction", table, selfColumn: left, otherColumn: right } as const;
      const path2 = { kind: "junction", table, selfColumn: right, otherColumn: left } as const;
      addRelation(
        source,
        { name, entity: r.source, target: r.target, cardinality: "many", path: path1, withLimit },
        path,
      );
      addRelation(
        target,
        { name: inverse, entity: r.target, target: r.source, cardinality: "many", path: path2, withLimit },
        path,
      );
      continue;
    }
    const column = `${name}_id`;
    checkName(column, `${path}.config.mappedBy`, "column");
    if (source.fields.has(column)) throw new ConfigError(path, `"${r.source}" already has a field "${column}"`);
    if (r.config.owner) {
      if (r.type !== "n:1" || r.target !== "users")
        throw new ConfigError(`${path}.config.owner`, "only a many-to-one relation to users can be the owner");
      if (source.owner) throw new ConfigError(`${path}.config.owner`, `"${r.source}" already has an owner`);
      source.owner = column;
    }
    const unique = r.type === "1:1";
    source.fields.set(column, {
      name: column,
      type: "reference",
      config: { required: r.config.required === true },
      system: false,
      hidden: false,
    });
    const fk: CompiledForeignKey = {
      entity: r.source,
      column,
      target: r.target,
      onDelete: r.config.on_delete ?? "set null",
      unique,
      required: r.config.required === true,
    };
    schema.foreignKeys.push(fk);
    addRelation(
      source,
      { name, entity: r.source, target: r.target, cardinality: "one", path: { kind: "local", column }, withLimit },
      path,
    );
    addRelation(
      target,
      {
        name: inverse,
        entity: r.target,
        target: r.source,
        cardinality: unique ? "one" : "many",
        path: { kind: "remote", column },
        withLimit,
      },
      path,
    );
  }

  // after the relations, so a rename cannot take over a key column such as `author_id`
  for (const e of entities.values()) checkRenames(e.fields, `config.data.entities.${e.name}`);

  for (const [key, i] of Object.entries(json.indices ?? {})) {
    const path = `config.data.indices.${key}`;
    const e = entities.get(i.entity);
    if (!e) throw new ConfigError(`${path}.entity`, `unknown entity "${i.entity}"`);
    for (const f of i.fields) if (!e.fields.has(f)) throw new ConfigError(`${path}.fields`, `unknown field "${f}"`);
    for (const f of i.fields)
      if (e.fields.get(f)!.encrypted)
        throw new ConfigError(`${path}.fields`, `"${f}" is encrypted: an index on its ciphertext serves no query`);
    checkTableName(key, path, "index");
    if (i.unique === true) uniqueIndex(e, key, i.fields, schema);
    else schema.indices.push({ name: key, entity: i.entity, columns: i.fields, unique: false });
  }
  for (const e of entities.values())
    for (const f of e.fields.values())
      if (f.config.unique && f.type !== "primary")
        uniqueIndex(e, derivedName(`uniq_${e.name}_${f.name}`), [f.name], schema);
  // a searchable encrypted field is found by its blind index (§10.3): an index makes that a lookup, not a scan
  for (const e of entities.values())
    for (const f of e.fields.values())
      if (f.indexOf)
        schema.indices.push({
          name: derivedName(`idx_${e.name}_${f.name}`),
          entity: e.name,
          columns: [f.name],
          unique: false,
        });
  for (const fk of schema.foreignKeys)
    if (!fk.unique)
      schema.indices.push({
        name: derivedName(`idx_${fk.entity}_${fk.column}`),
        entity: fk.entity,
        columns: [fk.column],
        unique: false,
      });
    else uniqueIndex(entities.get(fk.entity)!, derivedName(`uniq_${fk.entity}_${fk.column}`), [fk.column], schema);
  const tenancyCompiled = schema.tenancy;
  if (tenancyCompiled) {
    const tenant = entities.get(tenancyCompiled.entity)!;
    tenancyCompiled.tenantFields = [...tenant.fields.values()].filter((f) => !f.hidden).map((f) => f.name);
    const unique = schema.indices.filter((i) => i.unique && i.entity === tenant.name).flatMap((i) => i.columns);
    tenancyCompiled.unique = new Set(unique);
  }
  return schema;
}
