/** Parses the JSON `where` language (§2.2) into a Filter, checking every field and value against the schema. */
import { BadRequestError, ConfigError } from "../errors.js";
import type { ColumnType, CompiledField } from "../schema/compiled.js";
import { and, COMPARISONS, type Comparison, type Filter, not, type Operand, or, type Scalar } from "./ast.js";

/** Answers the field a caller may name, or undefined for unknown and unreadable fields alike (no oracle). */
export type FieldResolver = (name: string) => CompiledField | undefined;

export interface ParseOptions {
  /** Policy filters may use `@user.id`-style placeholders; a caller's where may not. */
  placeholders?: boolean;
  /** Prefix for error paths, e.g. `where` or `config.auth.roles.user.permissions[2].policies[0].filter`. */
  path?: string;
  /** Report problems as ConfigError (startup) instead of BadRequestError (request). */
  asConfigError?: boolean;
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
const FIELD_OPERATORS = new Set([...COMPARISONS, "$in", "$nin", "$notin", "$like", "$ilike", "$isnull", "$between"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

class WhereParser {
  private nodes = 0;
  private values = 0;
  constructor(
    private readonly resolve: FieldResolver,
    private readonly options: ParseOptions,
  ) {}

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
      else if (key.startsWith("$")) this.fail(at, `unknown combinator "${key}" (expected $and, $or, $not)`);
      else parts.push(this.field(key, value, at));
    }
    return and(...parts);
  }

  /** `$and`/`$or`/`$not` take an array of condition objects or one object whose keys are the items. */
  private group(value: unknown, path: string, depth: number): Filter[] {
    if (Array.isArray(value)) return value.map((v, i) => this.conditions(v, `${path}[${i}]`, depth + 1));
    if (isObject(value)) return Object.entries(value).map(([k, v]) => this.conditions({ [k]: v }, path, depth + 1));
    return this.fail(path, "expected an array or an object of conditions");
  }

  private field(name: string, value: unknown, path: string): Filter {
    const field = this.resolve(name);
    if (!field) return this.fail(path, `unknown field "${name}"`);
    if (Array.isArray(value)) return this.operator(field, "$in", value, path);
    if (!isObject(value)) return this.operator(field, "$eq", value, path);
    const entries = Object.entries(value);
    if (entries.length === 0) this.fail(path, "expected at least one operator");
    return and(...entries.map(([op, v]) => this.operator(field, op, v, `${path}.${op}`)));
  }

  private operator(field: CompiledField, op: string, value: unknown, path: string): Filter {
    if (!FIELD_OPERATORS.has(op))
      this.fail(path, `unknown operator "${op}" (expected one of ${[...FIELD_OPERATORS].join(" ")})`);
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

  private ordered(field: CompiledField, path: string) {
    if (!ORDERED_TYPES.includes(field.type) && !isContextField(field))
      this.fail(path, `"${field.name}" cannot be compared by order`);
  }

  private value(field: CompiledField, value: unknown, path: string, nullable: boolean): Operand {
    if (++this.values > MAX_VALUES) this.fail(path, `more than ${MAX_VALUES} values in one where`);
    if (this.options.placeholders && typeof value === "string" && value.startsWith("@"))
      return { placeholder: value.slice(1) };
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
    return value as Scalar;
  }
}

/** A request-context value in a policy condition (`@entity`, `@user.<claim>`), folded before SQL. */
export const isContextField = (field: CompiledField) => field.name.startsWith("@");

function expectedType(type: ColumnType): "integer" | "number" | "string" | "boolean" {
  if (type === "primary" || type === "reference") return "integer";
  if (type === "number") return "number";
  if (type === "boolean") return "boolean";
  return "string";
}

/** Parse a `where` object into a Filter. `undefined`/`{}` means no restriction. */
export function parseWhere(input: unknown, resolve: FieldResolver, options: ParseOptions = {}): Filter {
  const parser = new WhereParser(resolve, options);
  if (input === undefined || input === null) return and();
  return parser.conditions(input, options.path ?? "where", 0);
}
