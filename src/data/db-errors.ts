/** Maps SQLite constraint failures (from either driver) to typed errors; anything else stays unknown (500). */
import { BadRequestError, type CitadelError, ConflictError } from "../errors.js";

/** One answer for a reference to a missing row and to a row the caller cannot read (§4.10, §4.17). */
export const brokenReference = () =>
  new ConflictError("the write would break a reference between rows (a related row is missing or still referenced)");

const UNIQUE = /UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)/;

/**
 * The 409 of a unique collision, naming only the columns `nameable` allows: a composite index may span a
 * field the caller can neither read nor wrote (§4.10). The same body whether the row holding the value is
 * one the caller can read or not (§4.17).
 */
export function uniqueConflict(error: unknown, nameable: (field: string) => boolean): ConflictError | undefined {
  const unique = error instanceof Error ? UNIQUE.exec(error.message) : null;
  if (!unique) return undefined;
  const fields = (unique[1] ?? "")
    .split(", ")
    .map((c) => c.split(".").pop() ?? c)
    .filter(nameable);
  return new ConflictError(`a row with the same ${fields.length > 0 ? fields.join(", ") : "values"} already exists`);
}

export function translateDbError(error: unknown): CitadelError | undefined {
  if (!(error instanceof Error)) return undefined;
  const unique = uniqueConflict(error, () => true);
  if (unique) return unique;
  if (error.message.includes("FOREIGN KEY constraint failed")) return brokenReference();
  if (error.message.includes("too many SQL variables"))
    return new BadRequestError("the request binds too many values; narrow the where or the lists in it");
  return undefined;
}
