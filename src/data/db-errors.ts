/**
 * Maps the database errors the dialect classified (by the engine's code, as the connection raises them: see
 * src/db/dialect-driver.ts) to typed errors; anything else stays unknown (500).
 */
import { DatabaseError } from "../dialect/index.js";
import { BadRequestError, type CitadelError, ConflictError, UnavailableError } from "../errors.js";

/** One answer for a reference to a missing row and to a row the caller cannot read (§4.10, §4.17). */
export const brokenReference = () =>
  new ConflictError("the write would break a reference between rows (a related row is missing or still referenced)");

/**
 * The 409 of a unique collision, naming only the columns `nameable` allows: a composite index may span a
 * field the caller can neither read nor wrote (§4.10). The same body whether the row holding the value is
 * one the caller can read or not (§4.17).
 */
export function uniqueConflict(error: unknown, nameable: (field: string) => boolean): ConflictError | undefined {
  if (!(error instanceof DatabaseError) || error.kind !== "unique") return undefined;
  const fields = error.columns.filter(nameable);
  return new ConflictError(`a row with the same ${fields.length > 0 ? fields.join(", ") : "values"} already exists`);
}

/** A delete cascading deeper than SQLite's 1,000 levels of triggers (and a request's walk of its fallout, cascade.ts). */
export const tooDeep = () =>
  new BadRequestError(
    "this delete cascades through more levels of rows than the database allows (1,000); delete the deepest rows first",
  );

export function translateDbError(error: unknown): CitadelError | undefined {
  if (!(error instanceof DatabaseError)) return undefined;
  switch (error.kind) {
    case "unique":
      return uniqueConflict(error, () => true);
    case "foreign-key":
      return brokenReference();
    case "too-many-values":
      return new BadRequestError("the request binds too many values; narrow the where or the lists in it");
    case "too-large":
      return new BadRequestError("a value is too large for the database to index it; shorten it");
    case "too-deep":
      return tooDeep();
    case "busy":
      return new UnavailableError();
  }
}
