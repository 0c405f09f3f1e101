/** Placeholder binding (§4.4): `@user.<claim>` in a policy filter becomes the subject's value. */
import { FALSE, type Filter, isPlaceholder, mapOperands, type Operand } from "../query/ast.js";

const SCALAR = new Set(["string", "number", "boolean"]);

/**
 * Replace `@user.<claim>` with the subject's value. A policy filter with any placeholder that has no scalar
 * value (anonymous callers) matches nothing as a whole, so `$not`/`$ne` can never turn a missing value into "all".
 */
export function bindPlaceholders(filter: Filter, user: Record<string, unknown> | undefined): Filter {
  let unbound = false;
  const value = (operand: Operand): Operand => {
    if (!isPlaceholder(operand)) return operand;
    const v = user?.[operand.placeholder.slice("user.".length)];
    if (!SCALAR.has(typeof v)) {
      unbound = true;
      return null;
    }
    return v as Operand;
  };
  const bound = mapOperands(filter, value);
  return unbound ? FALSE : bound;
}
