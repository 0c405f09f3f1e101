/** Maps SQLite constraint failures (from either driver) to typed errors; anything else stays unknown (500). */
import { BadRequestError, type CitadelError, ConflictError } from "../errors.js";

/** One answer for a reference to a missing row and to a row the caller cannot read (§4.10, §4.17). */
export const brokenReference = () =>
  new ConflictError("the write would break a reference between rows (a related row is missing or still referenced)");

const UNIQUE = /UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)/;

/** Whether the database refused a write because a unique value is taken (by any row, readable or not). */
export const isUniqueViolation = (error: unknown): boolean => error instanceof Error && UNIQUE.test(error.message);

export function translateDbError(error: unknown): CitadelError | undefined {
  if (!(error instanceof Error)) return undefined;
  const unique = UNIQUE.exec(error.message);
  if (unique) {
    // The same body whether the row holding the value is one the caller can read or not (§4.17).
    const fields = (unique[1] ?? "").split(", ").map((c) => c.split(".").pop());
    return new ConflictError(`a row with the same ${fields.join(", ")} already exists`);
  }
  if (error.message.includes("FOREIGN KEY constraint failed")) return brokenReference();
  if (error.message.includes("too many SQL variables"))
    return new BadRequestError("the request binds too many values; narrow the where or the lists in it");
  return undefined;
}
