/** Placeholder binding (§4.4): `@user.<claim>` in a policy filter becomes the subject's value. */
import {
  FALSE,
  type Filter,
  isPlaceholder,
  mapOperands,
  type Operand,
  type Placeholder,
  type Scalar,
} from "../query/ast.js";
import { storedDate, storedDateTime } from "../schema/dates.js";

const SCALAR = new Set(["string", "number", "boolean"]);

/**
 * A caller's value as something of type `expects` compares it, or undefined when it cannot be: a number claim
 * compares with text as its text, as both engines would; any other value of another type is none, and so is a
 * string holding U+0000. A column's type decides in a filter, a literal's in a condition (conditions.ts), so
 * `"0" >= 3` is unknown in both.
 */
export function fittingValue(v: unknown, expects?: Placeholder["expects"]): Scalar | undefined {
  if (!SCALAR.has(typeof v)) return undefined;
  // no column holds U+0000 (§2.3 refuses it in writes), and PostgreSQL fails a statement binding it: a 500
  if (typeof v === "string" && v.includes("\0")) return undefined;
  if (!expects || typeof v === expects) return v as Scalar;
  return expects === "string" && typeof v === "number" ? String(v) : undefined;
}

/** The caller's value as the column compares it, or undefined when it cannot be (`fittingValue`, dates). */
function fitting(operand: Placeholder, v: unknown): Operand | undefined {
  // a date compares as the column holds it: `2026-01-01T05:00+05:00` is `2026-01-01T00:00:00.000Z`
  if (operand.date) {
    if (typeof v !== "string") return undefined;
    return (operand.date === "date" ? storedDate(v) : storedDateTime(v, true)) ?? undefined;
  }
  return fittingValue(v, operand.expects);
}

/**
 * Replace `@user.<claim>` with the subject's value. A policy filter with any placeholder that has no scalar
 * value (anonymous callers) matches nothing as a whole, so `$not`/`$ne` can never turn a missing value into "all".
 */
export function bindPlaceholders(filter: Filter, user: Record<string, unknown> | undefined): Filter {
  let unbound = false;
  const value = (operand: Operand): Operand => {
    if (!isPlaceholder(operand)) return operand;
    const v = fitting(operand, user?.[operand.placeholder.slice("user.".length)]);
    if (v === undefined) {
      unbound = true;
      return null;
    }
    return v;
  };
  const bound = mapOperands(filter, value);
  return unbound ? FALSE : bound;
}

/**
 * Bind a rule's caller values leaf by leaf (§9.1): `user.<claim>` and `context.account_id` become the caller's
 * scalar, or SQL NULL when it has none, which makes each comparison UNKNOWN (never NULL-equals-NULL: the
 * compiler writes `= ?`, not `IS NULL`), so an allow does not hold and a deny does, as for conditions.
 */
export function bindCallerValues(filter: Filter, caller: Caller): Filter {
  return mapOperands(filter, (operand) => (isPlaceholder(operand) ? (callerValue(operand, caller) ?? null) : operand));
}

/** Whose values a rule's placeholders are bound to. */
export interface Caller {
  user?: Record<string, unknown>;
  tenant?: number;
}

/** A rule's caller value as bindCallerValues binds it, or undefined when the caller has none that fits. */
export function callerValue(operand: Placeholder, caller: Caller): Operand | undefined {
  const name = operand.placeholder;
  return fitting(operand, name === "context.account_id" ? caller.tenant : caller.user?.[name.slice("user.".length)]);
}
