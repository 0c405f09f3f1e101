/**
 * Parses list options (`where`, `sort`, `select`, `with`, `limit`, `offset`, `count`) from query strings or JSON
 * bodies.
 */
import { unknownKey } from "../config/messages.js";
import { BadRequestError, grouped } from "../errors.js";
import type { CompiledEntity, CompiledField, CompiledRelation } from "../schema/compiled.js";
import type { Filter } from "./ast.js";
import { requireUniqueKeys } from "./json-keys.js";
import { type FieldResolver, parseWhere, type Reach } from "./where.js";

export interface SortKey {
  field: string;
  dir: "asc" | "desc";
}

/** The rows and fields one permission reaches (the guard's answer), placeholders already bound. */
export interface Scope {
  filter: Filter;
  /** fields the permission covers; undefined means every non-hidden field */
  fields?: ReadonlySet<string>;
  /**
   * Fields the permission covers only on some rows (§9.4): for each, the rows where its rule holds. A read
   * shows the field there only, and a where or sort naming it sees its value there only; a write of it is
   * refused unless every row it touches satisfies the rule.
   */
  rowFields?: ReadonlyMap<string, Filter>;
  /** a write's owner column (§4.14), pinned to the caller's user id: naming another user is refused */
  owner?: string;
  /**
   * A tenant-bound caller's scope column (§6.2), set by the server on create and never written by the caller;
   * `id` is undefined for a caller without a tenant, who writes no scoped rows.
   */
  tenant?: { field: string; id: number | undefined; superadminRole?: string };
}

export interface WithSpec {
  relation: CompiledRelation;
  /** what the caller may read of the related entity */
  view: ReadableView;
  /** filter on the related rows, from the caller */
  where: Filter;
  select?: string[];
  sort: SortKey[];
  limit: number;
  with: WithSpec[];
}

export interface ListQuery {
  where: Filter;
  sort: SortKey[];
  select?: string[];
  with: WithSpec[];
  limit: number;
  offset: number;
  /** whether the list answers its totals (`meta.count`, `meta.total`); false costs the page's query alone (§2.5) */
  count: boolean;
  /** the byte budget of the page and every `with` level together (§2.3); undefined for trusted in-process reads */
  maxResponseBytes?: number;
}

/** The raw inputs, as strings from a URL or values from a JSON body. */
export interface RawListQuery {
  where?: unknown;
  sort?: unknown;
  select?: unknown;
  with?: unknown;
  limit?: unknown;
  offset?: unknown;
  count?: unknown;
}

/** The keys of a list query (a JSON body's top level) and of one relation's options in `with`. */
const LIST_KEYS: readonly (keyof RawListQuery)[] = ["where", "sort", "select", "with", "limit", "offset", "count"];
const WITH_KEYS = ["where", "sort", "select", "limit", "with"] as const;

/**
 * An unknown key is 400 naming it and the nearest known one (§2.3, as §1.8 does for config): a misspelt `where`
 * that was ignored would answer every row the caller may see. `path` is the object's own, none at the top.
 */
export function requireKnownKeys(input: object, known: readonly string[], path?: string): void {
  for (const key of Object.keys(input))
    if (!known.includes(key)) {
      const at = path === undefined ? key : `${path}.${key}`;
      throw new BadRequestError(`${path === undefined ? "" : `${path}: `}${unknownKey(key, known)}`, { path: at });
    }
}

export interface QueryLimits {
  defaultLimit: number;
  maxLimit: number;
  /**
   * The most rows one request may read over its page and every `with` level, computed before any query runs
   * (§2.3, `config.data.max_rows_per_request`). Undefined only for trusted in-process reads.
   */
  maxRowsPerRequest?: number;
  /**
   * The most bytes one request may answer over its page and every `with` level, as stored (§2.3,
   * `config.data.max_response_bytes`), checked by data/byte-budget.ts before the rows are read. Undefined only
   * for trusted in-process reads.
   */
  maxResponseBytes?: number;
}

/** What a caller may name on one entity: readable fields, and a way to ask about related entities. */
export interface ReadableView {
  entity: CompiledEntity;
  scope: Scope;
  resolve: FieldResolver;
  /** the view of a related entity, or undefined when the caller may not read it (it is then omitted) */
  related(relation: CompiledRelation): ReadableView | undefined;
  /** the view of any entity by name, for `$exists`; undefined when unknown or unreadable */
  other?(entity: string): ReadableView | undefined;
}

/** What a caller's where may reach from a view: each hop under the caller's own read permission (§4.13). */
export function reachOf(view: ReadableView): Reach {
  return {
    entity: view.entity.name,
    resolve: view.resolve,
    scope: view.scope.filter,
    relation(name) {
      const relation = view.entity.relations.get(name);
      const target = relation && followRelation(view, relation);
      return relation && target ? { relation, target: reachOf(target) } : undefined;
    },
    other(entity) {
      const target = view.other?.(entity);
      return target && reachOf(target);
    },
    fieldRule: (name) => view.scope.rowFields?.get(name),
  };
}

export const MAX_WITH_DEPTH = 3;
/** Relations expanded per request, over all levels: each is one query. */
export const MAX_WITH_RELATIONS = 32;
/** Sort keys one request may name (§2.3); `id` is added after them to break ties. */
export const MAX_SORT_KEYS = 8;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Query strings carry JSON as text: `where={"a":1}`, `with={"comments":{}}`. */
function maybeJSON(value: unknown, path: string, always: boolean): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  if (!always && !trimmed.startsWith("{") && !trimmed.startsWith("[")) return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new BadRequestError(`${path}: malformed JSON`, { path });
  }
  requireUniqueKeys(trimmed, path, path);
  return parsed;
}

function integer(value: unknown, path: string, fallback: number, max?: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0)
    throw new BadRequestError(`${path}: expected a non-negative integer`, { path });
  if (max !== undefined && n > max) throw new BadRequestError(`${path}: at most ${max}`, { path });
  return n;
}

/** A yes/no option: a boolean from a JSON body, "true"/"false" from a query string. */
function flag(value: unknown, path: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new BadRequestError(`${path}: expected true or false`, { path });
}

/**
 * A comma-separated list (or array) of names, empty ones dropped. With `max`, a longer list is refused
 * before any name is resolved, so what a request costs past splitting is set by the bound, not its size.
 */
function names(value: unknown, path: string, max?: { count: number; what: string }): string[] {
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : undefined;
  if (!list) throw new BadRequestError(`${path}: expected a comma-separated list of names`, { path });
  const out: string[] = [];
  for (const item of list) {
    if (typeof item !== "string")
      throw new BadRequestError(`${path}: expected a comma-separated list of names`, { path });
    const name = item.trim();
    if (name.length === 0) continue;
    if (max && out.length === max.count)
      throw new BadRequestError(`${path}: at most ${max.count} ${max.what}`, { path, max: max.count });
    out.push(name);
  }
  return out;
}

function field(view: ReadableView, name: string, path: string): CompiledField {
  const f = view.resolve(name);
  if (!f) throw new BadRequestError(`${path}: unknown field "${name}"`, { path });
  return f;
}

/** Fields of each entity a caller could ever name (hidden ones never count, so the bound reveals nothing). */
const nameableFields = new WeakMap<CompiledEntity, number>();

function fieldCount(entity: CompiledEntity): number {
  let count = nameableFields.get(entity);
  if (count === undefined) {
    count = 0;
    for (const f of entity.fields.values()) if (!f.hidden) count++;
    nameableFields.set(entity, count);
  }
  return count;
}

/** `select`: names deduplicated; more names than the entity has fields is refused unread (§2.3). */
function parseSelect(view: ReadableView, value: unknown, path: string): string[] | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const list = names(value, path, {
    count: fieldCount(view.entity),
    what: `names (the fields of "${view.entity.name}")`,
  });
  const unique = new Set<string>();
  for (const n of list) unique.add(field(view, n, path).name);
  return unique.size > 0 ? [...unique] : undefined;
}

/**
 * The default order when the caller names none: the entity's default sort, unless its field is one this
 * caller may not read (omitted by a field rule, or hidden); then `id`, so the order ranks nothing they
 * cannot see (§2.6).
 */
function defaultSort(view: ReadableView): SortKey[] {
  const { field: name, dir } = view.entity.defaultSort;
  if (name === "id" || !view.resolve(name)) return [{ field: "id", dir: name === "id" ? dir : "asc" }];
  return [
    { field: name, dir },
    { field: "id", dir: "asc" },
  ];
}

/** Sort keys, at most MAX_SORT_KEYS, in one pass; a field named again adds nothing to the order and is dropped. */
function parseSort(view: ReadableView, value: unknown, path: string): SortKey[] {
  const input = maybeJSON(value, path, false);
  if (input === undefined || input === null || input === "") return defaultSort(view);
  const bound = { count: MAX_SORT_KEYS, what: "sort keys" };
  const items = Array.isArray(input) ? input : isObject(input) ? [input] : names(input, path, bound);
  if (items.length > MAX_SORT_KEYS)
    throw new BadRequestError(`${path}: at most ${MAX_SORT_KEYS} sort keys`, { path, max: MAX_SORT_KEYS });
  const keys: SortKey[] = [];
  const seen = new Set<string>();
  const add = (name: string, dir: "asc" | "desc") => {
    const resolved = field(view, name, path);
    // §10.3: a ciphertext's order is random, and a blind index's would still rank the values
    if (resolved.encrypted) throw new BadRequestError(`${path}: "${name}" is encrypted and cannot be sorted`, { path });
    const f = resolved.name;
    if (seen.has(f)) return;
    seen.add(f);
    keys.push({ field: f, dir });
  };
  for (const item of items) {
    if (typeof item === "string") {
      const desc = item.startsWith("-");
      add(desc || item.startsWith("+") ? item.slice(1) : item, desc ? "desc" : "asc");
    } else if (isObject(item) && typeof item.by === "string") {
      const dir = item.dir ?? "asc";
      if (dir !== "asc" && dir !== "desc") throw new BadRequestError(`${path}.dir: expected "asc" or "desc"`, { path });
      add(item.by, dir);
    } else throw new BadRequestError(`${path}: expected "-field,field" or { by, dir }`, { path });
  }
  // id breaks ties so pages never overlap
  if (!seen.has("id")) keys.push({ field: "id", dir: "asc" });
  return keys;
}

/**
 * The caller's view of a relation's target, or undefined when the relation is not theirs to follow: the
 * target is unreadable, or the key column that links the two rows is a field they may not read (§4.8).
 */
export function followRelation(view: ReadableView, relation: CompiledRelation): ReadableView | undefined {
  const target = view.related(relation);
  if (!target) return undefined;
  const path = relation.path;
  if (path.kind === "local" && (!view.resolve(path.column) || view.scope.rowFields?.has(path.column))) return undefined;
  if (path.kind === "remote" && (!target.resolve(path.column) || target.scope.rowFields?.has(path.column)))
    return undefined;
  return target;
}

/** What parsing `with` has spent so far: relations (each one query) and the worst-case rows over all levels. */
interface WithBudget {
  relations: number;
  rows: number;
}

function parseWith(
  view: ReadableView,
  value: unknown,
  path: string,
  depth: number,
  limits: QueryLimits,
  parentRows: number,
  budget: WithBudget,
): WithSpec[] {
  const input = maybeJSON(value, path, false);
  if (input === undefined || input === null || input === "") return [];
  if (depth >= MAX_WITH_DEPTH)
    throw new BadRequestError(`${path}: nested deeper than ${MAX_WITH_DEPTH} levels`, { path, max: MAX_WITH_DEPTH });
  const entries: [string, unknown][] = isObject(input)
    ? Object.entries(input)
    : names(input, path, { count: MAX_WITH_RELATIONS, what: "relations per request" }).map((n) => [n, {}]);
  const specs: WithSpec[] = [];
  const seen = new Set<string>();
  for (const [name, options] of entries) {
    const at = `${path}.${name}`;
    if (seen.has(name)) throw new BadRequestError(`${path}: relation "${name}" is named twice`, { path });
    seen.add(name);
    if (++budget.relations > MAX_WITH_RELATIONS)
      throw new BadRequestError(`${path}: at most ${MAX_WITH_RELATIONS} relations per request`, {
        path,
        max: MAX_WITH_RELATIONS,
      });
    const relation = view.entity.relations.get(name);
    if (!relation) throw new BadRequestError(`${path}: unknown relation "${name}"`, { path });
    if (options !== true && options !== null && !isObject(options))
      throw new BadRequestError(`${at}: expected an object of options`, { path: at });
    const o = isObject(options) ? options : {};
    requireKnownKeys(o, WITH_KEYS, at);
    const target = followRelation(view, relation);
    if (!target) continue; // not readable by this caller: omitted (§4.5)
    const limit = integer(o.limit, `${at}.limit`, relation.withLimit, limits.maxLimit);
    // Each parent row brings at most one row of a to-one relation, at most `limit` of a to-many one.
    const rows = parentRows * (relation.cardinality === "one" ? 1 : limit);
    budget.rows += rows;
    specs.push({
      relation,
      view: target,
      where: parseWhere(maybeJSON(o.where, `${at}.where`, true), target.resolve, {
        path: `${at}.where`,
        reach: reachOf(target),
      }),
      select: parseSelect(target, o.select, `${at}.select`),
      sort: parseSort(target, o.sort, `${at}.sort`),
      limit,
      with: parseWith(target, o.with, `${at}.with`, depth + 1, limits, rows, budget),
    });
  }
  return specs;
}

/**
 * Refuse, before any query runs, a request whose worst case reads more rows than the budget (§2.3): the page
 * brings at most `limit` rows, each `with` level multiplies its parent level's rows by its per-parent limit
 * (1 for a to-one relation), and the levels add up. The bound is exact for the worst case: relations.ts
 * caps each parent's rows in SQL (`row_number() <= limit`, one row of a to-one relation).
 *
 * It also keeps every `with` query under SQLite's 32,766 bound variables: a level binds the keys of its
 * parent level's rows (`in (...)`, at most one per parent row, so at most max_rows_per_request, which the
 * config caps at 20,000) plus the caller's where (at most 5,000 values, where.ts) and the policy filter.
 */
function checkRowBudget(query: ListQuery, rows: number, limits: QueryLimits): void {
  const max = limits.maxRowsPerRequest;
  if (max === undefined || rows <= max) return;
  const bound = `at most ${grouped(max)} per request (max_rows_per_request)`;
  if (query.with.length === 0)
    throw new BadRequestError(`limit: ${grouped(rows)} rows; ${bound}`, { path: "limit", rows, max });
  throw new BadRequestError(
    `with: this request may read up to ${grouped(rows)} rows (limit ${query.limit}, times each with level's per-parent limit, summed over all levels); ${bound}`,
    { path: "with", rows, max },
  );
}

/** Parse a list request for `view.entity`; every field named must be readable by the caller. */
export function parseListQuery(view: ReadableView, raw: RawListQuery, limits: QueryLimits): ListQuery {
  requireKnownKeys(raw, LIST_KEYS);
  const limit = integer(raw.limit, "limit", limits.defaultLimit, limits.maxLimit);
  const budget: WithBudget = { relations: 0, rows: limit };
  const query: ListQuery = {
    where: parseWhere(maybeJSON(raw.where, "where", true), view.resolve, { reach: reachOf(view) }),
    sort: parseSort(view, raw.sort, "sort"),
    select: parseSelect(view, raw.select, "select"),
    with: parseWith(view, raw.with, "with", 0, limits, limit, budget),
    limit,
    offset: integer(raw.offset, "offset", 0),
    count: flag(raw.count, "count", true),
    maxResponseBytes: limits.maxResponseBytes,
  };
  checkRowBudget(query, budget.rows, limits);
  return query;
}

/** Parse a bare `where` (count, exists, update many, delete many). */
export function parseWhereInput(view: ReadableView, value: unknown, path = "where"): Filter {
  return parseWhere(maybeJSON(value, path, true), view.resolve, { path, reach: reachOf(view) });
}
