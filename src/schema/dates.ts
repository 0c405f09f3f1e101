/**
 * Dates as Citadel stores them: a `date` field's value as `YYYY-MM-DD`, a `datetime` field's and the
 * `created_at`/`updated_at` timestamps as UTC ISO 8601 (`toISOString`), so that text order is time order.
 * Writes and `where` values go through the same parsing: a value compared with a column is the value the
 * column would hold.
 */
import type { CompiledField } from "./compiled.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Whether a field holds a date-time (stored in UTC) rather than a calendar date. */
export const holdsDateTime = (field: CompiledField) => field.type === "timestamp" || field.config.type !== "date";

/** A calendar date as stored, or undefined when `text` is none (`2026-02-30` is none). */
export function storedDate(text: string): string | undefined {
  if (!DATE.test(text)) return undefined;
  const time = Date.parse(`${text}T00:00:00Z`);
  return !Number.isNaN(time) && new Date(time).toISOString().startsWith(text) ? text : undefined;
}

/**
 * A date-time as stored (UTC, `2026-01-01T00:00:00.000Z`), or undefined when `text` is none. `dateOnly`
 * also takes a calendar date as its midnight UTC: what a `where` on a date-time may compare with.
 */
export function storedDateTime(text: string, dateOnly = false): string | undefined {
  if (dateOnly && DATE.test(text)) return storedDate(text) && `${text}T00:00:00.000Z`;
  if (!DATETIME.test(text)) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}
