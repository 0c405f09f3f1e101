/**
 * The checks around a write, inside its transaction: which row a write may reach (404 vs 403), that every
 * written row stays inside the permission's filter (§4.6), that it links only to rows the caller can read,
 * and what the caller sees of it afterwards (§4.10). Refusals say which kind they are (§4.16).
 */
import { type Expression, sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import { BadRequestError, ConflictError, ForbiddenError, fieldError, NotFoundError } from "../errors.js";
import { type DataPermission, type Subject, verbOf } from "../guard/access.js";
import { and, type Filter } from "../query/ast.js";
import { withFilter } from "../query/compile.js";
import type { Scope } from "../query/options.js";
import { kindOf } from "../schema/sync.js";
import type { Row } from "./codec.js";
import { brokenReference } from "./db-errors.js";
import type { DataEvents } from "./events.js";
import { checkFieldWrites, hideUnshown, shownFlags } from "./field-rules.js";
import type { EntityModel, TenantLink } from "./models.js";
import { pick } from "./relations.js";

/**
 * A write's permission, as the scoped accessor asked the guard for it: its scope plus, for the response,
 * what the caller may read (undefined: nothing).
 */
export interface WriteScopes {
  permission: DataPermission;
  /** how refusals name the caller: `role "member"` (§4.16) */
  caller: string;
  /** the caller's user id, for the owner column (§4.14); undefined without a user */
  userId?: number;
  write: Scope;
  read: Scope | undefined;
  /** the caller's read scope of another entity, for the rows a write links to */
  readOf(entity: string): Scope | undefined;
  /** who writes, for the mutation events */
  actor: Subject;
  events: DataEvents;
}

/** One request writes at most this many rows (ids travel as bound parameters; SQLite allows 32,766). */
export const MAX_ROWS_PER_WRITE = 10_000;

export const byIds = (ids: number[]): Filter => ({ kind: "in", field: "id", negated: false, values: ids });
export const byId = (id: number): Filter => ({ kind: "compare", field: "id", op: "$eq", value: id });

/** Fields the scope lets the caller read, in declaration order. */
export function readableFields(model: EntityModel, scope: Scope): string[] {
  return scope.fields ? model.visibleFields.filter((f) => scope.fields!.has(f)) : model.visibleFields;
}

export async function countRows(db: Db, entity: string, filter: Filter): Promise<number> {
  const query = db.selectFrom(entity).select((eb) => eb.fn.countAll<number>().as("n"));
  const row = await withFilter(query, filter, entity).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** "you may not write field F" (§4.8, §4.16): names only fields the caller sent. */
export function checkWritableFields(input: Row, scopes: WriteScopes, entity: string): void {
  const allowed = scopes.write.fields;
  if (!allowed) return;
  const refused = Object.keys(input).filter((k) => !allowed.has(k));
  if (refused.length > 0)
    throw new ForbiddenError(
      scopes.permission,
      entity,
      `you may not write ${refused.length === 1 ? "field" : "fields"} ${refused.join(", ")}`,
    );
}

/**
 * §4.14: a row's owner is its writer. A create that leaves the owner column out gets the caller's user id; a
 * write naming another user is 403 where the scope pins the owner (every role but implicit_allow ones, and not
 * for a secret key's server).
 */
export function withOwner(model: EntityModel, input: Row, scopes: WriteScopes, creating: boolean): Row {
  const column = model.entity.owner;
  if (!column) return input;
  if (input[column] === undefined)
    return creating && scopes.userId !== undefined ? { ...input, [column]: scopes.userId } : input;
  if (scopes.write.owner && input[column] !== scopes.userId)
    throw new ForbiddenError(
      scopes.permission,
      model.entity.name,
      `you may not write field ${column}: it is the owner, set to your own user`,
    );
  return input;
}

/**
 * §6.2: a tenant-bound caller's scope column is the server's to set: naming it is 400 (like `id`), and a
 * create gets the caller's tenant. Granting the superadmin role would step out of the tenant: 403.
 */
export function withTenant(model: EntityModel, input: Row, scopes: WriteScopes, creating: boolean): Row {
  const tenant = scopes.write.tenant;
  if (!tenant) return input;
  if (input[tenant.field] !== undefined)
    throw fieldError(tenant.field, "is the tenant scope, set by the server from your account; it cannot be written");
  const superadmin = tenant.superadminRole;
  if (model.entity.name === "users" && superadmin !== undefined && input.role === superadmin)
    throw new ForbiddenError(
      scopes.permission,
      model.entity.name,
      `you may not write field role: only a superadmin may grant "${superadmin}"`,
    );
  return creating && tenant.id !== undefined ? { ...input, [tenant.field]: tenant.id } : input;
}

/** "this row is outside what role X may update on E" (§4.16). */
const outside = (scopes: WriteScopes, entity: string, as = "this row is") =>
  new ForbiddenError(
    scopes.permission,
    entity,
    `${as} outside what ${scopes.caller} may ${verbOf(scopes.permission)} on ${entity}`,
  );

/** A row the caller cannot see is 404; one it sees but may not write is 403 (§4.5). */
export async function locate(trx: Db, entity: string, id: number, scopes: WriteScopes): Promise<void> {
  // the row's latest version, locked until the write commits, is the one decided on (whoever may see it)
  if (dialectOf(trx).locksRows) await trx.selectFrom(entity).select("id").where("id", "=", id).forUpdate().execute();
  const visible = scopes.read?.filter ?? scopes.write.filter;
  if ((await countRows(trx, entity, and(visible, byId(id)))) === 0) throw new NotFoundError();
  if ((await countRows(trx, entity, and(scopes.write.filter, byId(id)))) === 0) throw outside(scopes, entity);
}

/** Ids of the rows a many-row write reaches: the caller's where inside the read and write scopes. */
export async function targets(trx: Db, entity: string, where: Filter, scopes: WriteScopes): Promise<number[]> {
  let query = trx
    .selectFrom(entity)
    .select("id")
    .orderBy("id")
    .limit(MAX_ROWS_PER_WRITE + 1);
  // locked rows are matched again on their latest version: one a concurrent write moved out is not a target
  if (dialectOf(trx).locksRows) query = query.forUpdate();
  const rows = await withFilter(query, and(scopes.read?.filter, scopes.write.filter, where), entity).execute();
  if (rows.length > MAX_ROWS_PER_WRITE)
    throw new BadRequestError(`where: matches more than ${MAX_ROWS_PER_WRITE} rows; narrow it and repeat`);
  return rows.map((r) => Number(r.id));
}

const unrestricted = (filter: Filter) => filter.kind === "const" && filter.value;

/** Every written row must still lie inside the permission's filter (§4.6); otherwise the caller rolls back. */
export async function checkWritten(trx: Db, entity: string, ids: number[], scopes: WriteScopes): Promise<void> {
  if (unrestricted(scopes.write.filter) || ids.length === 0) return;
  if ((await countRows(trx, entity, and(scopes.write.filter, byIds(ids)))) !== ids.length)
    throw outside(scopes, entity, "the row as written would be");
}

const fieldRefused = (scopes: WriteScopes, entity: string) => (field: string) =>
  new ForbiddenError(scopes.permission, entity, `you may not write field ${field} on this row`);

/** §9.4: each written field's write rule holds on every row written, or 403 "you may not write field F". */
export function checkFieldRules(
  trx: Db,
  entity: string,
  ids: number[],
  written: Iterable<string>,
  scopes: WriteScopes,
) {
  return checkFieldWrites(trx, entity, ids, written, scopes.write, fieldRefused(scopes, entity));
}

/** checkFieldRules on `n` rows that were never written, selected by `from` (aliased as the entity). */
async function checkUnwrittenFieldRules(
  trx: Db,
  entity: string,
  from: Expression<unknown>,
  n: number,
  written: Iterable<string>,
  scopes: WriteScopes,
): Promise<void> {
  const rowFields = scopes.write.rowFields;
  if (!rowFields) return;
  for (const field of written) {
    const rule = rowFields.get(field);
    if (rule && (await countFrom(trx, entity, from, rule)) !== n) throw fieldRefused(scopes, entity)(field);
  }
}

/** Rows as the caller may see them after a write: readable fields, or only `id` (§4.10). */
export async function readBack(trx: Db, model: EntityModel, ids: number[], read: Scope | undefined): Promise<Row[]> {
  if (ids.length === 0) return [];
  const entity = model.entity.name;
  const readable = read ? readableFields(model, read) : [];
  const rows = read
    ? await withFilter(
        trx
          .selectFrom(entity)
          .select(["id", ...readable])
          .select(shownFlags(read.rowFields, readable, entity)),
        and(read.filter, byIds(ids)),
        entity,
      ).execute()
    : [];
  const found = new Map(rows.map((r) => [r.id, model.codec.decode(hideUnshown(r, read?.rowFields))]));
  return ids.map((id) => (found.has(id) ? pick(found.get(id)!, readable) : { id }));
}

/** The distinct keys `rows` write into each local relation's column. */
function writtenKeys(model: EntityModel, rows: Row[]): { target: string; keys: number[] }[] {
  const out: { target: string; keys: number[] }[] = [];
  for (const relation of model.entity.relations.values()) {
    const path = relation.path;
    if (path.kind !== "local") continue;
    const keys = [...new Set(rows.map((r) => r[path.column]).filter((k): k is number => typeof k === "number"))];
    if (keys.length > 0) out.push({ target: relation.target, keys });
  }
  return out;
}

/**
 * A written key may only point at a row the caller can read; a row it cannot read gets the same answer as a
 * missing one, so a write can neither reveal nor link to hidden rows, e.g. a task attached to someone else's
 * private project (§4.10, §4.17). Of an entity the caller cannot read at all every row is hidden: any key
 * into it is a missing row, whether that row exists, has a one-to-one partner already or not. The caller's
 * own user is never hidden from it (its token names it, and dies with it, §4.11): the owner key the server
 * sets (§4.14) and a key the caller sets to itself are written whatever it may read of users.
 */
export async function checkReferences(trx: Db, model: EntityModel, rows: Row[], scopes: WriteScopes): Promise<void> {
  for (const { target, keys } of writtenKeys(model, rows)) {
    const others = target === "users" ? keys.filter((key) => key !== scopes.userId) : keys;
    if (others.length === 0) continue;
    // the read scope carries the tenant (§6.2): a key into another tenant is a missing row too
    const scope = scopes.readOf(target);
    if (!scope || (await countRows(trx, target, and(scope.filter, byIds(others)))) !== others.length)
      throw brokenReference();
  }
}

/** Aliases of the two rows a tenant link joins: `citadel_` names no entity (schema/compile.ts reserves it). */
const ROW = "citadel_row";
const REF = "citadel_ref";

/**
 * The first of `ids` whose `link` joins rows of two tenants, if any. A row of no tenant (a superadmin's) is no
 * tenant's to delete, nor does a tenant's delete reach another tenant through it: it joins any.
 */
async function crossing(trx: Db, link: TenantLink, field: string, ids: number[], from: "out" | "in") {
  const [source, target] = from === "out" ? [ROW, REF] : [REF, ROW];
  const row = await trx
    .selectFrom(`${link.entity} as ${source}`)
    .innerJoin(`${link.target} as ${target}`, `${target}.id`, `${source}.${link.column}`)
    .select(`${ROW}.id as id`)
    .where(`${ROW}.id`, "in", ids)
    .whereRef(`${source}.${field}`, "<>", `${target}.${field}`)
    .limit(1)
    .executeTakeFirst();
  return row && Number(row.id);
}

/**
 * §6.2: a key between two tenant-scoped rows never crosses tenants; else a delete in one tenant would cascade
 * into the other (the database's foreign keys know no tenants) and one tenant's rows would name another's. A
 * tenant-bound caller cannot make such a key (the server sets its tenant, its references are read within it);
 * a request of an unbound one (a superadmin, a secret key) names any row, so the rows `ids` are checked as
 * written: each key `written` names a row of the same tenant, and a row moved to another tenant leaves no row
 * of its old one pointing at it. `written` "all": a create, every key. Server code (no request) is the app's
 * own and arranges its rows as it likes.
 */
export async function checkTenantLinks(
  trx: Db,
  model: EntityModel,
  ids: number[],
  written: ReadonlySet<string> | "all",
  scopes: WriteScopes,
): Promise<void> {
  const field = model.entity.tenantField;
  if (field === undefined || ids.length === 0 || scopes.write.tenant || !scopes.actor.request) return;
  const wrote = (column: string) => written === "all" || written.has(column) || written.has(field);
  for (const link of model.tenantLinks.out)
    if (wrote(link.column) && (await crossing(trx, link, field, ids, "out")) !== undefined)
      throw fieldError(
        link.column,
        `names a ${link.target} row of another tenant: a row's references stay in its tenant`,
      );
  if (written === "all" || !written.has(field)) return;
  for (const link of model.tenantLinks.in) {
    const id = await crossing(trx, link, field, ids, "in");
    if (id !== undefined)
      throw new ConflictError(
        `${model.entity.name} ${id} is referenced by ${link.entity} rows of its tenant (${link.entity}.${link.column}): a row's references stay in its tenant; move or detach them first`,
      );
  }
}

/** What the deferred foreign keys would say at commit: every written key names an existing row. */
async function checkForeignKeys(trx: Db, model: EntityModel, rows: Row[]): Promise<void> {
  for (const { target, keys } of writtenKeys(model, rows))
    if ((await countRows(trx, target, byIds(keys))) !== keys.length) throw brokenReference();
}

/** How many of the rows selected by `from` (aliased as the entity) lie inside `filter`. */
async function countFrom(trx: Db, entity: string, from: Expression<unknown>, filter: Filter): Promise<number> {
  const query = trx.selectFrom(sql`(${from})`.as(entity)).select((eb) => eb.fn.countAll<number>().as("n"));
  const row = await withFilter(query, filter, entity).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * A value standing in for a column in a row built by hand, typed as the column is: PostgreSQL takes an
 * untyped parameter for text, and would compare `'20' < '100'` as text in the write check.
 */
function typed(trx: Db, model: EntityModel, column: string, value: unknown) {
  return dialectOf(trx).typedValue(kindOf(model.entity.fields.get(column)!), value);
}

/**
 * A row built by hand: a SELECT of one typed value per column of the entity (and `extra` columns after them),
 * so that a filter runs on it as on a stored row, subqueries on other tables included. `extra` values are
 * the caller's own numbers, written as literals (PostgreSQL cannot type an untyped parameter in a UNION).
 */
export function literalRow(
  trx: Db,
  model: EntityModel,
  value: (column: string) => unknown,
  extra: Record<string, number> = {},
) {
  const columns = [...model.entity.fields.keys()].map((c) => sql`${typed(trx, model, c, value(c))} as ${sql.ref(c)}`);
  const more = Object.entries(extra).map(([name, v]) => sql`${sql.lit(v)} as ${sql.ref(name)}`);
  return sql`select ${sql.join([...columns, ...more])}`;
}

/** The stored form of a row that was never written: each column's value, its default, or null; no id yet. */
function unwrittenRow(model: EntityModel, stored: Row, column: string): unknown {
  if (column in stored) return stored[column] ?? null;
  const field = model.entity.fields.get(column)!;
  const fallback = field.config.default_value;
  return fallback === undefined ? null : (model.codec.encode({ [column]: fallback })[column] ?? null);
}

/** What a refused write is about: rows created (stored form) or the rows `ids` with `set` applied. */
export type Unwritten = { created: Row[]; ids: number[] } | { ids: number[]; set: Row };

/**
 * §4.17: the database refused a write for a unique value before the checks could run. Answer what the write
 * answers when the colliding row does not exist: the write check on each row as it would have been written
 * (a new row's id is not known yet: it is NULL, so a filter on it fails closed), the write rules of the
 * `written` fields on them (§9.4), then the reference check and the foreign keys. Only a write that passes
 * them all gets the collision's 409, the same body whether the colliding row is one the caller can read or not.
 */
export async function checkCollided(
  trx: Db,
  model: EntityModel,
  unwritten: Unwritten,
  values: Row[],
  scopes: WriteScopes,
  written: Iterable<string>,
): Promise<void> {
  const entity = model.entity.name;
  const columns = [...model.entity.fields.keys()];
  if ("created" in unwritten) {
    await checkWritten(trx, entity, unwritten.ids, scopes);
    await checkFieldRules(trx, entity, unwritten.ids, written, scopes);
    for (const stored of unwritten.created) {
      const row = literalRow(trx, model, (c) => (c === "id" ? null : unwrittenRow(model, stored, c)));
      if (!unrestricted(scopes.write.filter) && (await countFrom(trx, entity, row, scopes.write.filter)) !== 1)
        throw outside(scopes, entity, "the row as written would be");
      await checkUnwrittenFieldRules(trx, entity, row, 1, written, scopes);
    }
  } else {
    const { ids, set } = unwritten;
    const rows = trx
      .selectFrom(entity)
      .select((eb) => columns.map((c) => (c in set ? typed(trx, model, c, set[c] ?? null).as(c) : eb.ref(c).as(c))))
      .where("id", "in", ids);
    if (!unrestricted(scopes.write.filter) && (await countFrom(trx, entity, rows, scopes.write.filter)) !== ids.length)
      throw outside(scopes, entity, "the row as written would be");
    await checkUnwrittenFieldRules(trx, entity, rows, ids.length, written, scopes);
  }
  await checkReferences(trx, model, values, scopes);
  await checkForeignKeys(trx, model, values);
}
