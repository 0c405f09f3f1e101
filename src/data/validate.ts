/** Write validation (§2.4): one valibot schema per entity and field, built once at startup. */
import * as v from "valibot";
import { ConfigError, ValidationError } from "../errors.js";
import type { CompiledEntity, CompiledField } from "../schema/compiled.js";
import { holdsDateTime, storedDate, storedDateTime } from "../schema/dates.js";

type FieldSchema = v.GenericSchema<unknown, unknown>;

const MAX_JSON_DEPTH = 64;

/**
 * What keeps a JSON value from being stored as it was sent, checked without recursion (any input is safe):
 * nesting past `max` levels, or a number JSON cannot write (`1e309` parses as Infinity, and would be stored
 * as null).
 */
function jsonProblem(value: unknown, max: number): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item === "number" && !Number.isFinite(item)) return "must hold finite numbers only";
    if (typeof item !== "object" || item === null) continue;
    if (depth >= max) return `must nest at most ${max} levels`;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return undefined;
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

function textSchema(f: CompiledField, path: string): FieldSchema {
  const checks: v.PipeItem<string, string, v.BaseIssue<unknown>>[] = [];
  const c = f.config;
  if (c.minLength !== undefined) checks.push(v.minLength(c.minLength, `must be at least ${c.minLength} characters`));
  if (c.maxLength !== undefined) checks.push(v.maxLength(c.maxLength, `must be at most ${c.maxLength} characters`));
  if (c.pattern !== undefined) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(c.pattern);
    } catch {
      throw new ConfigError(`${path}.config.pattern`, "is not a valid regular expression");
    }
    checks.push(v.regex(pattern, `must match ${c.pattern}`));
  }
  if (c.format === "email")
    return v.pipe(
      v.string("must be a string"),
      v.trim(),
      v.toLowerCase(),
      v.regex(EMAIL, "must be an email address"),
      ...checks,
    ) as FieldSchema;
  return v.pipe(v.string("must be a string"), ...checks) as FieldSchema;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function numberSchema(f: CompiledField): FieldSchema {
  const checks: v.PipeItem<number, number, v.BaseIssue<unknown>>[] = [v.finite("must be a finite number")];
  const c = f.config;
  // beyond 2^53 a JSON number is not exact, and PostgreSQL's bigint ends at 2^63: the same bound on every engine
  if (c.integer) checks.push(v.safeInteger(`must be an integer between -${MAX_SAFE} and ${MAX_SAFE}`));
  if (c.minimum !== undefined) checks.push(v.minValue(c.minimum, `must be at least ${c.minimum}`));
  if (c.maximum !== undefined) checks.push(v.maxValue(c.maximum, `must be at most ${c.maximum}`));
  return v.pipe(v.number("must be a number"), ...checks) as FieldSchema;
}

/** Dates are stored as text; datetimes are normalized to UTC ISO so that ordering in SQL is correct (dates.ts). */
function dateSchema(f: CompiledField): FieldSchema {
  if (!holdsDateTime(f))
    return v.pipe(
      v.string("must be a date (YYYY-MM-DD)"),
      v.check((s) => storedDate(s) !== undefined, "must be a valid date (YYYY-MM-DD)"),
    ) as FieldSchema;
  return v.pipe(
    v.string("must be an ISO 8601 date-time"),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const stored = storedDateTime(dataset.value);
      if (stored !== undefined) return stored;
      addIssue({ message: "must be a valid ISO 8601 date-time" });
      return NEVER;
    }),
  ) as FieldSchema;
}

function fieldSchema(f: CompiledField, path: string): FieldSchema {
  switch (f.type) {
    case "text":
      return textSchema(f, path);
    case "number":
      return numberSchema(f);
    case "boolean":
      return v.boolean("must be true or false");
    case "date":
      return dateSchema(f);
    case "enum": {
      const values = f.config.options?.values ?? [];
      return v.picklist(values, `must be one of ${values.join(", ")}`) as FieldSchema;
    }
    case "json":
      return v.pipe(
        v.unknown(),
        v.rawCheck(({ dataset, addIssue }) => {
          const problem = dataset.typed ? jsonProblem(dataset.value, MAX_JSON_DEPTH) : undefined;
          if (problem) addIssue({ message: problem });
        }),
      ) as FieldSchema;
    case "reference":
      return v.pipe(
        v.number("must be the id of a row"),
        v.safeInteger("must be the id of a row"),
        v.minValue(1, "must be the id of a row"),
      ) as FieldSchema;
    default:
      throw new Error(`no write schema for ${f.type}`);
  }
}

export interface EntityValidator {
  /** Validate a create body; fills defaults. Throws ValidationError with every field's problems. */
  create(input: Record<string, unknown>): Record<string, unknown>;
  /** Validate an update body (every field optional). */
  update(input: Record<string, unknown>): Record<string, unknown>;
}

/** Build the validator of one entity (at startup). */
/**
 * The most UTF-8 bytes of a text value in an index (unique fields, declared indexes): PostgreSQL refuses an
 * index entry over 2,704 bytes, so every engine takes the same values with room for a second column.
 */
export const MAX_INDEXED_TEXT_BYTES = 2000;

const utf8 = new TextEncoder();

function indexedText(schema: FieldSchema): FieldSchema {
  return v.pipe(
    schema as v.GenericSchema<string>,
    v.check(
      (s) =>
        typeof s !== "string" ||
        s.length * 3 <= MAX_INDEXED_TEXT_BYTES ||
        utf8.encode(s).length <= MAX_INDEXED_TEXT_BYTES,
      `must be at most ${MAX_INDEXED_TEXT_BYTES} bytes of UTF-8 (the field is indexed)`,
    ),
  ) as FieldSchema;
}

/** `indexed`: the entity's columns that an index holds (their text values are bounded). */
export function buildValidator(entity: CompiledEntity, indexed: ReadonlySet<string> = new Set()): EntityValidator {
  const writable = [...entity.fields.values()].filter((f) => !f.system && !f.hidden);
  const schemaOf = (f: CompiledField) => {
    const schema = fieldSchema(f, `config.data.entities.${entity.name}.fields.${f.name}`);
    return f.type === "text" && indexed.has(f.name) ? indexedText(schema) : schema;
  };
  const schemas = new Map(writable.map((f) => [f.name, schemaOf(f)]));
  const defaults = writable.filter((f) => f.config.default_value !== undefined);
  for (const f of defaults) {
    const result = v.safeParse(schemas.get(f.name)!, f.config.default_value);
    if (!result.success)
      throw new ConfigError(
        `config.data.entities.${entity.name}.fields.${f.name}.config.default_value`,
        result.issues[0].message,
      );
  }

  function check(input: Record<string, unknown>, creating: boolean) {
    // No prototype: a body key like `constructor` or `__proto__` is just another unknown field.
    const errors: Record<string, string[]> = Object.create(null);
    const output: Record<string, unknown> = {};
    const fail = (name: string, message: string) => {
      errors[name] ??= [];
      errors[name].push(message);
    };
    for (const [name, value] of Object.entries(input)) {
      const field = entity.fields.get(name);
      if (field?.system) fail(name, "is a system field and cannot be written");
      else if (!field || field.hidden) fail(name, "unknown field");
      else if (value === null || value === undefined) {
        if (field.config.required) fail(name, "is required");
        else output[name] = null;
      } else {
        const result = v.safeParse(schemas.get(name)!, value);
        if (result.success) output[name] = result.output;
        else for (const issue of result.issues) fail(name, issue.message);
      }
    }
    if (creating)
      for (const f of writable) {
        if (f.name in input) continue;
        if (f.config.default_value !== undefined) output[f.name] = f.config.default_value;
        else if (f.config.required) fail(f.name, "is required");
      }
    if (Object.keys(errors).length > 0) throw new ValidationError(errors);
    return output;
  }

  return { create: (input) => check(input, true), update: (input) => check(input, false) };
}
