/**
 * Dates as Citadel stores them: a `date` field's value as `YYYY-MM-DD`, a `datetime` field's and the
 * `created_at`/`updated_at` timestamps as UTC ISO 8601 (`toISOString`), so that text order is time order.
 * Writes, defaults and `where` values go through the same parsing: a value compared with a column is the value
 * the column would hold. A date-time without an offset is UTC, never the server's time zone: two servers on
 * one database read it alike. Years stay within 0000-9999, where the text has four digits and sorts in order.
 */
import type { FieldConfig } from "./fields.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?$/;
const FOUR_DIGIT_YEAR = /^\d{4}-/;

/** Whether a column holds a date-time (stored in UTC) rather than a calendar date. */
export const holdsDateTime = (field: { type: string; config: FieldConfig }) =>
  field.type === "timestamp" || field.config.type !== "date";

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
  const parts = DATETIME.exec(text);
  if (!parts || storedDate(parts[1]!) === undefined) return undefined;
  const time = Date.parse(`${parts[1]}T${parts[2]}${parts[3] ?? "Z"}`);
  if (Number.isNaN(time)) return undefined;
  const stored = new Date(time).toISOString();
  return FOUR_DIGIT_YEAR.test(stored) ? stored : undefined;
}

/** A date field's default as a write would store it; any other value (or an invalid one: validation names it) as it is. */
export function storedDateDefault(type: string, config: FieldConfig): unknown {
  const value = config.default_value;
  if (type !== "date" || typeof value !== "string") return value;
  return (config.type === "date" ? storedDate(value) : storedDateTime(value)) ?? value;
}
