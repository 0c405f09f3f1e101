/** Parses list options (`where`, `sort`, `select`, `with`, `limit`, `offset`) from query strings or JSON bodies. */
import { BadRequestError } from "../errors.js";
import type { CompiledEntity, CompiledField, CompiledRelation } from "../schema/compiled.js";
import type { Filter } from "./ast.js";
import { type FieldResolver, parseWhere } from "./where.js";

export interface SortKey {
  field: string;
  dir: "asc" | "desc";
}

/** The rows and fields one permission reaches (the guard's answer), placeholders already bound. */
export interface Scope {
  filter: Filter;
  /** fields the permission covers; undefined means every non-hidden field */
  fields?: ReadonlySet<string>;
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
}

/** The raw inputs, as strings from a URL or values from a JSON body. */
export interface RawListQuery {
  where?: unknown;
  sort?: unknown;
  select?: unknown;
  with?: unknown;
  limit?: unknown;
  offset?: unknown;
}

export interface QueryLimits {
  defaultLimit: number;
  maxLimit: number;
}

/** What a caller may name on one entity: readable fields, and a way to ask about related entities. */
export interface ReadableView {
  entity: CompiledEntity;
  scope: Scope;
  resolve: FieldResolver;
  /** the view of a related entity, or undefined when the caller may not read it (it is then omitted) */
  related(relation: CompiledRelation): ReadableView | undefined;
}

export const MAX_WITH_DEPTH = 3;
/** Relations expanded per request, over all levels: each is one query. */
export const MAX_WITH_RELATIONS = 32;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Query strings carry JSON as text: `where={"a":1}`, `with={"comments":{}}`. */
function maybeJSON(value: unknown, path: string, always: boolean): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  if (!always && !trimmed.startsWith("{") && !trimmed.startsWith("[")) return value;
  try {
    return JSON.parse(trimmed);
  } catch {
    throw new BadRequestError(`${path}: malformed JSON`, { path });
  }
}

function integer(value: unknown, path: string, fallback: number, max?: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0)
    throw new BadRequestError(`${path}: expected a non-negative integer`, { path });
  if (max !== undefined && n > max) throw new BadRequestError(`${path}: at most ${max}`, { path });
  return n;
}

function names(value: unknown, path: string): string[] {
  const list = Array.isArray(value) ? value : typeof value === "string" ? value.split(",") : undefined;
  if (!list || list.some((s) => typeof s !== "string"))
    throw new BadRequestError(`${path}: expected a comma-separated list of names`, { path });
  return (list as string[]).map((s) => s.trim()).filter((s) => s.length > 0);
}

function field(view: ReadableView, name: string, path: string): CompiledField {
  const f = view.resolve(name);
  if (!f) throw new BadRequestError(`${path}: unknown field "${name}"`, { path });
  return f;
}

function parseSelect(view: ReadableView, value: unknown, path: string): string[] | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const list = names(value, path);
  for (const n of list) field(view, n, path);
  return list.length > 0 ? list : undefined;
}

function parseSort(view: ReadableView, value: unknown, path: string): SortKey[] {
  const input = maybeJSON(value, path, false);
  if (input === undefined || input === null || input === "") return [{ ...view.entity.defaultSort }];
  const keys: SortKey[] = [];
  const items = Array.isArray(input) ? input : isObject(input) ? [input] : names(input, path);
  for (const item of items) {
    if (typeof item === "string") {
      const desc = item.startsWith("-");
      const name = desc || item.startsWith("+") ? item.slice(1) : item;
      keys.push({ field: field(view, name, path).name, dir: desc ? "desc" : "asc" });
    } else if (isObject(item) && typeof item.by === "string") {
      const dir = item.dir ?? "asc";
      if (dir !== "asc" && dir !== "desc") throw new BadRequestError(`${path}.dir: expected "asc" or "desc"`, { path });
      keys.push({ field: field(view, item.by, path).name, dir });
    } else throw new BadRequestError(`${path}: expected "-field,field" or { by, dir }`, { path });
  }
  // id breaks ties so pages never overlap
  if (!keys.some((k) => k.field === "id")) keys.push({ field: "id", dir: "asc" });
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
  if (path.kind === "local" && !view.resolve(path.column)) return undefined;
  if (path.kind === "remote" && !target.resolve(path.column)) return undefined;
  return target;
}

function parseWith(
  view: ReadableView,
  value: unknown,
  path: string,
  depth: number,
  limits: QueryLimits,
  budget: { left: number },
): WithSpec[] {
  const input = maybeJSON(value, path, false);
  if (input === undefined || input === null || input === "") return [];
  if (depth >= MAX_WITH_DEPTH)
    throw new BadRequestError(`${path}: nested deeper than ${MAX_WITH_DEPTH} levels`, { path });
  const entries: [string, unknown][] = isObject(input) ? Object.entries(input) : names(input, path).map((n) => [n, {}]);
  const specs: WithSpec[] = [];
  const seen = new Set<string>();
  for (const [name, options] of entries) {
    const at = `${path}.${name}`;
    if (seen.has(name)) throw new BadRequestError(`${path}: relation "${name}" is named twice`, { path });
    seen.add(name);
    if (--budget.left < 0)
      throw new BadRequestError(`${path}: at most ${MAX_WITH_RELATIONS} relations per request`, { path });
    const relation = view.entity.relations.get(name);
    if (!relation) throw new BadRequestError(`${path}: unknown relation "${name}"`, { path });
    if (options !== true && options !== null && !isObject(options))
      throw new BadRequestError(`${at}: expected an object of options`, { path: at });
    const target = followRelation(view, relation);
    if (!target) continue; // not readable by this caller: omitted (§4.5)
    const o = isObject(options) ? options : {};
    specs.push({
      relation,
      view: target,
      where: parseWhere(maybeJSON(o.where, `${at}.where`, true), target.resolve, { path: `${at}.where` }),
      select: parseSelect(target, o.select, `${at}.select`),
      sort: parseSort(target, o.sort, `${at}.sort`),
      limit: integer(o.limit, `${at}.limit`, relation.withLimit, limits.maxLimit),
      with: parseWith(target, o.with, `${at}.with`, depth + 1, limits, budget),
    });
  }
  return specs;
}

/** Parse a list request for `view.entity`; every field named must be readable by the caller. */
export function parseListQuery(view: ReadableView, raw: RawListQuery, limits: QueryLimits): ListQuery {
  return {
    where: parseWhere(maybeJSON(raw.where, "where", true), view.resolve),
    sort: parseSort(view, raw.sort, "sort"),
    select: parseSelect(view, raw.select, "select"),
    with: parseWith(view, raw.with, "with", 0, limits, { left: MAX_WITH_RELATIONS }),
    limit: integer(raw.limit, "limit", limits.defaultLimit, limits.maxLimit),
    offset: integer(raw.offset, "offset", 0),
  };
}

/** Parse a bare `where` (count, exists, update many, delete many). */
export function parseWhereInput(view: ReadableView, value: unknown, path = "where"): Filter {
  return parseWhere(maybeJSON(value, path, true), view.resolve, { path });
}
