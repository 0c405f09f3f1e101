/** Parses the JSON `where` language (§2.2) into a Filter, checking every field and value against the schema. */
import { BadRequestError, ConfigError } from "../errors.js";
import type { ColumnType, CompiledField, CompiledRelation } from "../schema/compiled.js";
import { holdsDateTime, storedDate, storedDateTime } from "../schema/dates.js";
import {
  and,
  COMPARISONS,
  type Comparison,
  certainly,
  type Filter,
  isOuterRef,
  mapOperands,
  not,
  type Operand,
  or,
  type Placeholder,
  type Scalar,
} from "./ast.js";

/** Answers the field a caller may name, or undefined for unknown and unreadable fields alike (no oracle). */
export type FieldResolver = (name: string) => CompiledField | undefined;

/**
 * What a where may reach from one entity (§4.13): a caller's reach is its own read permission on each entity
 * (its filter goes inside the subquery, its field rules decide the names); a policy's reach is everything.
 */
export interface Reach {
  entity: string;
  /** the owner column (§4.14), for `$owner` */
  owner?: string;
  resolve: FieldResolver;
  /** the rows of this entity the where may see */
  scope: Filter;
  /** a relation to follow, or undefined when unknown or not the caller's to follow (alike: no oracle) */
  relation(name: string): { relation: CompiledRelation; target: Reach } | undefined;
  /** another entity, for `$exists` */
  other(entity: string): Reach | undefined;
  /** the rows where a field readable only on some rows may be seen (§9.4); undefined for every row */
  fieldRule?(name: string): Filter | undefined;
}

/** The entity being filtered, and the one around it inside a subquery (`@row.<field>`). */
interface Frame {
  resolve: FieldResolver;
  reach?: Reach;
  outer?: Frame;
  hops: number;
  /** whether `@row.<field>` may name the outer row (not across a junction table, two subqueries deep) */
  rowRefs: boolean;
  /** the rules of the fields readable only on some rows that this entity's where names (§9.4), by field */
  seen: Map<string, Filter>;
}

/** Relation hops and `$exists` subqueries nest at most this deep (§4.13). */
export const MAX_HOPS = 4;
const QUANTIFIERS = new Set(["$some", "$none", "$every"]);

export interface ParseOptions {
  /** Policy filters may use `@user.id`-style placeholders; a caller's where may not. */
  placeholders?: boolean;
  /** Prefix for error paths, e.g. `where` or `config.auth.roles.user.permissions[2].policies[0].filter`. */
  path?: string;
  /** Report problems as ConfigError (startup) instead of BadRequestError (request). */
  asConfigError?: boolean;
  /** Relations and `$exists` may be followed only with a reach; otherwise only fields are known. */
  reach?: Reach;
}

export const MAX_DEPTH = 8;
const MAX_NODES = 500;
const MAX_LIST = 1000;
/** Values bound by one where, over all its lists (SQLite binds at most 32,766 per statement). */
const MAX_VALUES = 5000;
/**
 * Characters in a `$like`/`$ilike` pattern (§2.3). Escaping at most triples it (compile.ts), and three UTF-8
 * bytes a UTF-16 unit keep it far under SQLite's 50,000-byte LIKE/GLOB pattern limit.
 */
export const MAX_PATTERN = 1000;

const ORDERED_TYPES: ColumnType[] = ["primary", "reference", "number", "text", "enum", "date", "timestamp"];
const STRING_TYPES: ColumnType[] = ["text", "enum", "date", "timestamp"];
/** What a searchable encrypted field takes (§10.3): `$eq` and `$in`, through its blind index. */
const ENCRYPTED_OPERATORS = new Set(["$eq", "$in"]);
const FIELD_OPERATORS = new Set([...COMPARISONS, "$in", "$nin", "$notin", "$like", "$ilike", "$isnull", "$between"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

class WhereParser {
  private nodes = 0;
  private values = 0;
  private frame: Frame;
  constructor(
    resolve: FieldResolver,
    private readonly options: ParseOptions,
  ) {
    this.frame = { resolve, reach: options.reach, hops: 0, rowRefs: false, seen: new Map() };
  }

  /** The whole where on the outermost entity's rows, under the rules of the fields it names there. */
  where(input: unknown, path: string): Filter {
    const where = this.conditions(input, path, 0);
    return and(...this.frame.seen.values(), where);
  }

  fail(path: string, problem: string): never {
    if (this.options.asConfigError) throw new ConfigError(path, problem);
    throw new BadRequestError(`${path}: ${problem}`, { path });
  }

  /** An object of conditions: top-level keys are ANDed. */
  conditions(input: unknown, path: string, depth: number): Filter {
    if (depth > MAX_DEPTH) this.fail(path, `nested deeper than ${MAX_DEPTH} levels`);
    if (!isObject(input)) this.fail(path, "expected an object of conditions");
    const parts: Filter[] = [];
    for (const [key, value] of Object.entries(input)) {
      if (++this.nodes > MAX_NODES) this.fail(path, `more than ${MAX_NODES} conditions`);
      const at = `${path}.${key}`;
      if (key === "$and") parts.push(and(...this.group(value, at, depth)));
      else if (key === "$or") parts.push(or(...this.group(value, at, depth)));
      else if (key === "$not") parts.push(not(and(...this.group(value, at, depth))));
      else if (key === "$exists" && this.frame.reach) parts.push(this.exists(value, at, depth));
      else if (key === "$owner" && this.options.placeholders) parts.push(this.owner(value, at));
      else if (key.startsWith("$")) this.fail(at, `unknown combinator "${key}" (expected $and, $or, $not)`);
      else parts.push(this.field(key, value, at, depth));
    }
    return and(...parts);
  }

  /** `$and`/`$or`/`$not` take an array of condition objects or one object whose keys are the items. */
  private group(value: unknown, path: string, depth: number): Filter[] {
    if (Array.isArray(value)) return value.map((v, i) => this.conditions(v, `${path}[${i}]`, depth + 1));
    if (isObject(value)) return Object.entries(value).map(([k, v]) => this.conditions({ [k]: v }, path, depth + 1));
    return this.fail(path, "expected an array or an object of conditions");
  }

  /** Parse `input` as a where on `reach`'s rows, inside a subquery of the current row. */
  private inside(reach: Reach, input: unknown, path: string, depth: number, rowRefs = true): Filter {
    if (this.frame.hops >= MAX_HOPS) this.fail(path, `relations and $exists nest at most ${MAX_HOPS} deep`);
    const outer = this.frame;
    this.frame = { resolve: reach.resolve, reach, outer, hops: outer.hops + 1, rowRefs, seen: new Map() };
    try {
      this.bound(reach.scope, path, `the read filter of "${reach.entity}"`);
      const where = this.conditions(input, path, depth + 1);
      return and(reach.scope, ...this.frame.seen.values(), where);
    } finally {
      this.frame = outer;
    }
  }

  /** `$owner: true` in a policy filter: the owner column equals `@user.id` (§4.14). */
  private owner(value: unknown, path: string): Filter {
    const column = this.frame.reach?.owner;
    if (!column) return this.fail(path, `"${this.frame.reach?.entity ?? "this entity"}" has no owner relation`);
    if (value !== true && value !== false) this.fail(path, "expected true or false");
    const owned: Filter = {
      kind: "compare",
      field: column,
      op: "$eq",
      value: { placeholder: "user.id", expects: "number" },
    };
    return value ? owned : not(owned);
  }

  /** `$exists: { entity, where }`; the where may name the current row as `@row.<field>` (§4.13). */
  private exists(value: unknown, path: string, depth: number): Filter {
    if (!isObject(value) || typeof value.entity !== "string") return this.fail(path, "expected { entity, where }");
    for (const key of Object.keys(value))
      if (key !== "entity" && key !== "where") this.fail(`${path}.${key}`, "expected { entity, where }");
    const reach = this.frame.reach!.other(value.entity);
    if (!reach) return this.fail(`${path}.entity`, `unknown entity "${value.entity}"`);
    return {
      kind: "exists",
      table: reach.entity,
      where: this.inside(reach, value.where ?? {}, `${path}.where`, depth),
    };
  }

  /**
   * A relation path: `{ post: { published: true } }`, `{ "post.published": true }`, and for to-many relations
   * `{ comments: { $some | $none | $every: {...} } }`. It becomes EXISTS over the relation's keys.
   */
  private relation(name: string, value: unknown, path: string, depth: number): Filter | undefined {
    const hop = this.frame.reach?.relation(name);
    if (!hop) return undefined;
    const { relation, target } = hop;
    let quantifier = "$some";
    let inner = value;
    const keys = isObject(value) ? Object.keys(value) : [];
    if (keys.length === 1 && QUANTIFIERS.has(keys[0]!))
      [quantifier, inner] = [keys[0]!, (value as Record<string, unknown>)[keys[0]!]];
    else if (relation.cardinality === "many")
      this.fail(path, `"${name}" is a to-many relation: use { $some | $none | $every: { … } }`);
    if (!isObject(inner)) this.fail(path, "expected an object of conditions");
    const at = keys.length === 1 && QUANTIFIERS.has(keys[0]!) ? `${path}.${quantifier}` : path;
    let where = this.inside(target, inner, at, depth, relation.path.kind !== "junction");
    // every related row satisfies it = no related row fails it
    if (quantifier === "$every") {
      this.bound(target.scope, at, `the read filter of "${target.entity}"`);
      where = and(target.scope, not(where));
    }
    const found = linked(relation, target.entity, where);
    return quantifier === "$some" ? found : not(found);
  }

  private field(name: string, value: unknown, path: string, depth = 0): Filter {
    const field = this.frame.resolve(name);
    if (!field) {
      const dot = name.indexOf(".");
      const path_ =
        dot > 0
          ? // the rest of the name is a key of the nested where, whose path names it: `where.owner` + `.email`
            this.relation(name.slice(0, dot), { [name.slice(dot + 1)]: value }, path.slice(0, dot - name.length), depth)
          : this.relation(name, value, path, depth);
      if (path_) return path_;
      return this.fail(path, `unknown field "${name}"`);
    }
    this.see(field.name, path);
    if (Array.isArray(value)) return this.operator(field, "$in", value, path);
    if (!isObject(value)) return this.operator(field, "$eq", value, path);
    const entries = Object.entries(value);
    if (entries.length === 0) this.fail(path, "expected at least one operator");
    return and(...entries.map(([op, v]) => this.operator(field, op, v, `${path}.${op}`)));
  }

  /**
   * A field readable only on some rows (§9.4) is seen by the where only where its rule holds: its rule is ANDed
   * with the whole where of this entity (`where`, `inside`), not with each comparison. Guarding each comparison
   * (`rule AND salary < 100`) leaves the where's structure free to undo the guard: under a $not, or a $or
   * with another field, it selects the rows where the rule fails, the hidden ones. Around the whole where, no
   * $not, $or or nesting inside it reaches those rows, and what it answers is a subset of the rows where the
   * field is readable, on which the value is the caller's to see anyway. Each entity of the where keeps its own:
   * a relation path or `$exists` is a where on another entity's rows, so the rules of the fields it names there
   * (that entity's, under the caller's read permission on it) go inside its subquery, where those rows are.
   * Only where the rule is TRUE: an UNKNOWN rule (a NULL owner, an anonymous caller) under a NOT around this
   * hop ($none, $every, a $not around a relation path or $exists) would leave the match to the hidden value.
   */
  private see(name: string, path: string): void {
    const { seen, reach } = this.frame;
    const rule = seen.has(name) ? undefined : reach?.fieldRule?.(name);
    if (!rule) return;
    const holds = certainly(rule);
    seen.set(name, holds);
    // the rule is bound once for each entity of the where that names the field
    this.bound(holds, path, `the rule of "${name}"`);
  }

  /**
   * A filter the where embeds (a field's rule, the read filter of a hop's entity, §4.13) binds its values again
   * each time: they count against the where's bound, or repeated hops would reach the engine's bind limit (a 500).
   */
  private bound(filter: Filter, path: string, whose: string): void {
    mapOperands(filter, (operand) => {
      if (!isOuterRef(operand)) this.values++;
      return operand;
    });
    if (this.values > MAX_VALUES)
      this.fail(path, `more than ${MAX_VALUES} values in one where (with those of ${whose})`);
  }

  private operator(field: CompiledField, op: string, value: unknown, path: string): Filter {
    if (!FIELD_OPERATORS.has(op))
      this.fail(path, `unknown operator "${op}" (expected one of ${[...FIELD_OPERATORS].join(" ")})`);
    if (field.encrypted) return this.encrypted(field, op, value, path);
    const name = field.name;
    if (field.type === "json" && op !== "$isnull") this.fail(path, "json fields only support $isnull");
    switch (op) {
      case "$isnull":
        if (typeof value !== "boolean") this.fail(path, "expected true or false");
        return { kind: "isnull", field: name, isNull: value };
      case "$in":
      case "$nin":
      case "$notin": {
        if (!Array.isArray(value)) return this.fail(path, "expected an array");
        if (value.length > MAX_LIST) this.fail(path, `at most ${MAX_LIST} values`);
        const values = value.map((v, i) => this.value(field, v, `${path}[${i}]`, false));
        return { kind: "in", field: name, negated: op !== "$in", values };
      }
      case "$between": {
        if (!Array.isArray(value) || value.length !== 2) return this.fail(path, "expected [low, high]");
        this.ordered(field, path);
        return {
          kind: "between",
          field: name,
          low: this.value(field, value[0], `${path}[0]`, false),
          high: this.value(field, value[1], `${path}[1]`, false),
        };
      }
      case "$like":
      case "$ilike":
        if (!STRING_TYPES.includes(field.type) && !isContextField(field)) this.fail(path, `${op} needs a text field`);
        if (typeof value === "string" && value.length > MAX_PATTERN)
          this.fail(path, `at most ${MAX_PATTERN} characters in a pattern (this one has ${value.length})`);
        return {
          kind: "like",
          field: name,
          caseSensitive: op === "$like",
          pattern: this.value(field, value, path, false),
        };
      default: {
        const comparison = op as Comparison;
        if (value === null && (comparison === "$eq" || comparison === "$ne"))
          return { kind: "isnull", field: name, isNull: comparison === "$eq" };
        if (comparison !== "$eq" && comparison !== "$ne") this.ordered(field, path);
        return { kind: "compare", field: name, op: comparison, value: this.value(field, value, path, false) };
      }
    }
  }

  /**
   * §10.3: an encrypted field compares only for equality, only when searchable, and then through its blind
   * index: the value's digests under every key (a rotation may be under way), never its ciphertext.
   */
  private encrypted(field: CompiledField, op: string, value: unknown, path: string): Filter {
    const { index, keyring, context, previous } = field.encrypted!;
    if (!index || !keyring || !ENCRYPTED_OPERATORS.has(op))
      return this.fail(
        path,
        index
          ? `"${field.name}" is encrypted: only $eq and $in compare it`
          : `"${field.name}" is encrypted and not searchable: it cannot be filtered`,
      );
    const single = op === "$eq";
    if (single && value === null) return { kind: "isnull", field: field.name, isNull: true };
    const list = single ? [value] : value;
    if (!Array.isArray(list)) return this.fail(path, "expected an array");
    if (list.length > MAX_LIST) this.fail(path, `at most ${MAX_LIST} values`);
    const contexts = previous ? [context, previous] : [context];
    const values = list.flatMap((v, i) => {
      const at = single ? path : `${path}[${i}]`;
      if (typeof v !== "string") return this.fail(at, `expected a string for "${field.name}"`);
      if (this.options.placeholders && v.startsWith("@"))
        this.fail(at, `"${field.name}" is encrypted: it is compared with literal values only`);
      this.values += keyring.ids.length * contexts.length;
      if (this.values > MAX_VALUES) this.fail(at, `more than ${MAX_VALUES} values in one where`);
      return contexts.flatMap((c) => keyring.digests(v, c));
    });
    return { kind: "in", field: index, negated: false, values };
  }

  private ordered(field: CompiledField, path: string) {
    if (!ORDERED_TYPES.includes(field.type) && !isContextField(field))
      this.fail(path, `"${field.name}" cannot be compared by order`);
  }

  private value(field: CompiledField, value: unknown, path: string, nullable: boolean): Operand {
    if (++this.values > MAX_VALUES) this.fail(path, `more than ${MAX_VALUES} values in one where`);
    // a caller's where outside any subquery compares with the literal text
    if (typeof value === "string" && value.startsWith("@row.") && (this.frame.outer || this.options.placeholders)) {
      if (!this.frame.outer || !this.frame.rowRefs)
        this.fail(path, `${value} names the outer row: only inside $exists or a to-one or to-many relation`);
      const name = value.slice("@row.".length);
      const outer = this.frame.outer!.resolve(name);
      if (!outer) this.fail(path, `unknown field "${name}" in ${value}`);
      // its value is hidden on some outer rows, and a subquery would compare it there all the same
      if (this.frame.outer!.reach?.fieldRule?.(name))
        this.fail(path, `${value} is readable only on some rows and cannot be compared across rows`);
      if (outer!.encrypted) this.fail(path, `"${name}" is encrypted: ${value} cannot be compared (§10.3)`);
      // PostgreSQL compares no text with a number; SQLite would by its affinity rules: refused on both
      if (!isContextField(field) && comparedAs(outer!.type) !== comparedAs(field.type))
        this.fail(
          path,
          `"${field.name}" holds ${comparedAs(field.type)}s and ${value} ${comparedAs(outer!.type)}s: they cannot be compared`,
        );
      return { outer: name };
    }
    if (this.options.placeholders && typeof value === "string" && value.startsWith("@"))
      return isContextField(field)
        ? { placeholder: value.slice(1) }
        : { placeholder: value.slice(1), expects: comparedAs(field.type), ...datePlaceholder(field) };
    if (value === null && nullable) return null;
    if (isContextField(field)) {
      // a claim may hold any scalar; it is compared as SQL would (§4.3)
      if (!["string", "number", "boolean"].includes(typeof value))
        this.fail(path, "expected a string, number or boolean");
      return value as Scalar;
    }
    const expected = expectedType(field.type);
    const ok =
      expected === "integer"
        ? Number.isSafeInteger(value)
        : expected === "number"
          ? typeof value === "number" && Number.isFinite(value)
          : typeof value === expected;
    if (!ok) this.fail(path, `expected ${expected === "integer" ? "an integer" : `a ${expected}`} for "${field.name}"`);
    if (field.type === "date" || field.type === "timestamp") return this.date(field, value as string, path);
    return value as Scalar;
  }

  /** A date compared as the column holds it (dates.ts): a date-time in UTC, so text order is time order. */
  private date(field: CompiledField, value: string, path: string): string {
    const dateTime = holdsDateTime(field);
    const stored = dateTime ? storedDateTime(value, true) : storedDate(value);
    return (
      stored ??
      this.fail(
        path,
        dateTime
          ? `expected an ISO 8601 date-time or a date (YYYY-MM-DD) for "${field.name}"`
          : `expected a date (YYYY-MM-DD) for "${field.name}"`,
      )
    );
  }
}

/** What a placeholder compared with a date column binds as (`Placeholder.date`). */
function datePlaceholder(field: CompiledField): Partial<Pick<Placeholder, "date">> {
  if (field.type !== "date" && field.type !== "timestamp") return {};
  return { date: holdsDateTime(field) ? "datetime" : "date" };
}

/** EXISTS of a related row satisfying `where`, joined over the relation's keys (§4.13). */
function linked(relation: CompiledRelation, target: string, where: Filter): Filter {
  const path = relation.path;
  const eq = (field: string, outer: string): Filter => ({ kind: "compare", field, op: "$eq", value: { outer } });
  if (path.kind === "local") return { kind: "exists", table: target, where: and(eq("id", path.column), where) };
  if (path.kind === "remote") return { kind: "exists", table: target, where: and(eq(path.column, "id"), where) };
  const related: Filter = { kind: "exists", table: target, where: and(eq("id", path.otherColumn), where) };
  return { kind: "exists", table: path.table, where: and(eq(path.selfColumn, "id"), related) };
}

/** A request-context value in a policy condition (`@entity`, `@user.<claim>`), folded before SQL. */
export const isContextField = (field: CompiledField) => field.name.startsWith("@");

function expectedType(type: ColumnType): "integer" | "number" | "string" | "boolean" {
  if (type === "primary" || type === "reference") return "integer";
  if (type === "number") return "number";
  if (type === "boolean") return "boolean";
  return "string";
}

/** What a column's values are compared as: integers and other numbers compare with each other. */
export const comparedAs = (type: ColumnType) => {
  const expected = expectedType(type);
  return expected === "integer" ? "number" : expected;
};

/** Parse a `where` object into a Filter. `undefined`/`{}` means no restriction. */
export function parseWhere(input: unknown, resolve: FieldResolver, options: ParseOptions = {}): Filter {
  const parser = new WhereParser(resolve, options);
  if (input === undefined || input === null) return and();
  return parser.where(input, options.path ?? "where");
}
