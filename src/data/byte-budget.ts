/**
 * The byte budget of a read (§2.3, `config.data.max_response_bytes`): the page and every `with` level of one
 * request together answer at most so many bytes, counted as stored (a text's UTF-8 bytes, an encrypted value's
 * ciphertext) plus a fixed allowance per row and field for the names, punctuation and values of bounded size
 * (numbers, booleans, dates, enums). A row that a to-one relation shares between parents counts once per
 * parent, as the answer writes it under each.
 *
 * Each field's worst case is known from its config. Only when the rows a request may read, times their worst
 * case, could exceed the budget does a read measure them: a page in its own query, which reads each value
 * within its share of the budget and only the size of a larger one (reads.ts), and a `with` level in SQL
 * before fetching it, over the same scoped, filtered, sorted and limited rows (relations.ts). So an answer
 * too large is refused (400 naming the budget) without ever being loaded, and a read whose fields are bounded
 * costs no extra query.
 */
import { type AliasedRawBuilder, expressionBuilder, type SelectQueryBuilder, sql } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import type { Dialect } from "../dialect/index.js";
import { BadRequestError, grouped as n } from "../errors.js";
import { and, type Filter, TRUE } from "../query/ast.js";
import { compileFilter, withFilter } from "../query/compile.js";
import type { CompiledEntity, CompiledField } from "../schema/compiled.js";
import type { Row } from "./codec.js";
import { hideUnshown, type RowFields, shownFlags, shownOn } from "./field-rules.js";

/** The column a measured query names each row's id by: the rows are joined back to their table by it. */
export const MEASURED_ID = "__id";

/** The longest JSON number: `-2.2250738585072014e-308`. */
const NUMBER = 24;
/** A date-time as validation stores it (`9999-12-31T23:59:59.999Z`, schema/dates.ts), with a margin. */
const DATE = 32;
/** Quotes around a text, or `null`. */
const QUOTES = 4;
/** A UTF-16 code unit (what `maxLength` counts) is at most 3 bytes of UTF-8. */
const UTF8_PER_UNIT = 3;

/** Ciphertext of `bytes` of plaintext: `enc:v1:<key id of ≤ 32>:` and base64 of IV (12) | ciphertext | tag (16). */
const sealed = (bytes: number) => 40 + 4 * Math.ceil((bytes + 28) / 3);

/** What one field costs in a row: a fixed allowance, and for text and json its stored bytes (measured). */
interface FieldCost {
  fixed: number;
  /** the most its measured bytes can be (Infinity when unbounded); undefined when nothing is measured */
  measured?: number;
}

const fieldCosts = new WeakMap<CompiledField, FieldCost>();

/** A field's cost, from its config (once per field). */
function fieldCost(field: CompiledField): FieldCost {
  let cost = fieldCosts.get(field);
  if (cost) return cost;
  // `"name":` and a comma
  const name = field.name.length + 4;
  const max = field.config.maxLength;
  switch (field.type) {
    case "text": {
      const plain = max === undefined ? Number.POSITIVE_INFINITY : UTF8_PER_UNIT * max;
      cost = { fixed: name + QUOTES, measured: field.encrypted ? sealed(plain) : plain };
      break;
    }
    case "json":
      cost = { fixed: name + QUOTES, measured: Number.POSITIVE_INFINITY };
      break;
    case "enum": {
      const longest = Math.max(0, ...(field.config.options?.values ?? []).map((v) => v.length));
      cost = { fixed: name + QUOTES + UTF8_PER_UNIT * longest };
      break;
    }
    case "date":
    case "timestamp":
      cost = { fixed: name + DATE };
      break;
    default:
      // primary, reference, number, boolean: a number or `false`
      cost = { fixed: name + NUMBER };
  }
  fieldCosts.set(field, cost);
  return cost;
}

/** A text or json column whose stored bytes are measured. */
export interface MeasuredColumn {
  field: CompiledField;
  /** the most its bytes can be: Infinity when unbounded */
  most: number;
}

/** What a row of one level costs. */
export interface RowCost {
  /** what every row costs whatever its values */
  fixed: number;
  /** the text and json columns whose stored bytes are measured */
  measured: MeasuredColumn[];
  /** the other columns read, whose size is in `fixed` */
  plain: string[];
  /** the most a row can cost: Infinity when a measured column is unbounded */
  worst: number;
}

/** The cost of a row of `entity` reading `columns` and carrying the `relations` of its `with` level. */
export function rowCost(entity: CompiledEntity, columns: string[], relations: string[]): RowCost {
  const cost: RowCost = { fixed: 2, measured: [], plain: [], worst: 0 };
  for (const r of relations) cost.fixed += r.length + 4;
  for (const c of columns) {
    const f = entity.fields.get(c);
    if (!f) {
      cost.plain.push(c);
      continue;
    }
    const { fixed, measured } = fieldCost(f);
    cost.fixed += fixed;
    if (measured === undefined) {
      cost.plain.push(c);
      continue;
    }
    cost.measured.push({ field: f, most: measured });
    cost.worst += measured;
  }
  cost.worst += cost.fixed;
  return cost;
}

/** The most `rows` rows of this cost can take (0 rows take nothing, even unbounded ones). */
export const levelWorst = (rows: number, cost: RowCost) => (rows === 0 ? 0 : rows * cost.worst);

// biome-ignore lint/suspicious/noExplicitAny: tables are only known at runtime
type AnySelect = SelectQueryBuilder<any, any, any>;

/** One parent's share of a level, or the whole page: its rows and their bytes. */
export interface Measured {
  parent?: unknown;
  rows: number;
  bytes: number;
}

/**
 * The CTE of the sizes, named as no entity can be (`citadel_` is reserved): SQLite reads a CTE's own name inside
 * its body as a recursive reference, so a CTE named like the measured entity (`sizes`) was a 500.
 */
const SIZES = "citadel_sizes";

/**
 * The bytes of the rows a scoped query selects (by `MEASURED_ID`, one per row it would fetch), grouped by
 * `parent` when given. Their values are read from `entity` joined by id: SQLite's octet_length of a table's
 * column reads its size from the record, while a value passed through a window, a sort or a limited subquery
 * would be loaded whole. A field a rule shows on some rows only (§9.4) counts where it is shown, so the answer is no
 * oracle on values the caller cannot read.
 */
export async function measure(
  db: Db,
  entity: string,
  rows: AnySelect,
  cost: RowCost,
  rowFields: ReadonlyMap<string, Filter> | undefined,
  parent?: string,
): Promise<Measured[]> {
  const dialect = dialectOf(db);
  const eb = expressionBuilder<never, never>();
  const lengths = cost.measured.map(({ field: { name: c } }) => {
    const length = sql<number>`coalesce(${dialect.byteLength(`z.${c}`)}, 0)`;
    const rule = rowFields?.get(c);
    return rule ? sql<number>`case when ${compileFilter(eb, rule, "z")} then ${length} else 0 end` : length;
  });
  const size = lengths.length === 0 ? sql<number>`0` : sql.join(lengths, sql` + `);
  const joined = db.selectFrom(rows.as("r")).innerJoin(`${entity} as z`, "z.id", `r.${MEASURED_ID}`);
  const totals = [sql<number>`count(*)`.as("rows"), sql<number>`sum(size)`.as("bytes")];
  // grouped, through a materialized CTE: SQLite would sort a joined GROUP BY with the text columns its sizes
  // read, loading each value whole (measured over 560 rows of 1 MB: 7.5 s against 0.4 ms)
  const query = parent
    ? db
        .with(
          (cte) => cte(SIZES).materialized(),
          () => joined.select([size.as("size"), sql.ref(`r.${parent}`).as("parent")]),
        )
        .selectFrom(SIZES)
        .select([...totals, "parent"])
        .groupBy("parent")
    : db.selectFrom(joined.select(size.as("size")).as(SIZES)).select(totals);
  const result: { rows: unknown; bytes: unknown; parent?: unknown }[] = await query.execute();
  return result.map((r) => {
    const count = Number(r.rows);
    return { parent: r.parent, rows: count, bytes: count * cost.fixed + Number(r.bytes ?? 0) };
  });
}

const NOT_ASCII = /[^\0-\x7f]/;

/** The UTF-8 bytes of a string, without encoding it (a lone surrogate, refused at writes, counts 3). */
function utf8Bytes(s: string): number {
  // a regular expression scans ASCII faster than a loop over its code units
  if (!NOT_ASCII.test(s)) return s.length;
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) bytes += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return bytes;
}

/**
 * The bytes of rows already read, as stored (before decoding), as `measure` counts them: for a page of one row
 * (read one), which a write bounds, so that reading it costs no query more.
 */
export function storedBytes(rows: Row[], cost: RowCost): number {
  let bytes = rows.length * cost.fixed;
  for (const row of rows)
    for (const { field } of cost.measured) {
      const value = row[field.name];
      if (typeof value === "string") bytes += utf8Bytes(value);
    }
  return bytes;
}

/**
 * What one request has spent of the budget, level by level. A level is measured until what remains to read
 * fits the budget at its worst; from then on nothing more is measured.
 */
export class ByteBudget {
  private spent = 0;
  /** the worst case of the levels not read yet: finite ones summed, unbounded ones counted */
  private finite = 0;
  private unbounded = 0;
  /** how many times the answer writes each row read so far (rows not listed: once); made when first needed */
  private copies?: WeakMap<Row, number>;

  private constructor(
    readonly max: number,
    levels: number[],
  ) {
    for (const worst of levels) this.add(worst, 1);
  }

  /**
   * The budget of a read whose levels may cost at most `levels` (page first), or undefined when there is none
   * (a trusted read) or they all fit at their worst: then the read measures nothing.
   */
  static of(max: number | undefined, levels: number[]): ByteBudget | undefined {
    if (max === undefined) return undefined;
    const budget = new ByteBudget(max, levels);
    return budget.settled ? undefined : budget;
  }

  private add(worst: number, sign: 1 | -1) {
    if (worst === Number.POSITIVE_INFINITY) this.unbounded += sign;
    else this.finite += sign * worst;
  }

  /** True when every level not read yet fits at its worst: nothing more needs measuring. */
  get settled(): boolean {
    return this.unbounded === 0 && this.spent + this.finite <= this.max;
  }

  /**
   * What each of `values` values may take of what is left for them to be read with their rows at once: the
   * page reads larger ones only once their sizes are known to fit (`readOversized`).
   */
  shareOf(values: number): number {
    return Math.floor((this.max - this.spent) / Math.max(1, values));
  }

  copiesOf(row: Row): number {
    return this.copies?.get(row) ?? 1;
  }

  setCopies(row: Row, copies: number): void {
    if (copies === 1) return;
    this.copies ??= new WeakMap();
    this.copies.set(row, copies);
  }

  /**
   * Spend a level counted as at most `atMost` bytes, whose exact count `bytes` takes a pass over its text: when
   * `atMost` leaves every level not read yet fitting at its worst, it is spent as it is (nothing is measured
   * after it, so nothing reads the excess); otherwise the exact count.
   */
  spendAtMost(worst: number, atMost: number, bytes: () => number, refusal: { path: string; rows?: number }): void {
    this.add(worst, -1);
    const fits = this.unbounded === 0 && this.spent + atMost + this.finite <= this.max;
    this.add(worst, 1);
    this.spend(worst, fits ? atMost : bytes(), refusal);
  }

  /**
   * Spend what a level measured (its worst case, `worst`, leaves the unknown). Over the budget is 400: `page`
   * describes the page (its rows), or `at` names the `with` level that crossed it.
   */
  spend(worst: number, bytes: number, refusal: { path: string; rows?: number; at?: string }): void {
    this.add(worst, -1);
    this.spent += bytes;
    if (this.spent <= this.max) return;
    const { path, rows, at } = refusal;
    const what =
      at === undefined
        ? `${rows === 1 ? "this row holds" : `the ${n(rows ?? 0)} rows of this page hold`} ${n(this.spent)} bytes`
        : `the page and the with levels up to ${at} hold ${n(this.spent)} bytes`;
    throw overBudget(path, `${what} as stored`, this.max, { bytes: this.spent });
  }
}

const sizeOf = (column: string) => `__bytes_${column}`;

/** The capped selections of each field, kept for the last share asked (a page's share changes with its limit). */
const capped = new WeakMap<
  CompiledField,
  { dialect: Dialect; share: number; select: AliasedRawBuilder<unknown, string>[] }
>();

/**
 * The measured columns of a page read in the page's own query (§2.3): each value whose stored size is within
 * `share` is read, a larger one is left unread and its size is read instead (dialect `cappedText`: from the record,
 * not the value). So what the query loads is at most the budget, whatever the rows hold, and a page of ordinary
 * rows costs no query more; `pageSizes` then counts the page and `readOversized` reads the values past their share.
 * A column that can never exceed its share is read as it is (`column`).
 */
export function cappedColumns(
  db: Db,
  entity: string,
  cost: RowCost,
  share: number,
  column: (name: string) => AliasedRawBuilder<unknown, string>,
): AliasedRawBuilder<unknown, string>[] {
  const dialect = dialectOf(db);
  const select: AliasedRawBuilder<unknown, string>[] = [];
  for (const { field, most } of cost.measured) {
    const c = field.name;
    if (most <= share) {
      select.push(column(c));
      continue;
    }
    let cached = capped.get(field);
    if (cached?.dialect !== dialect || cached.share !== share) {
      cached = { dialect, share, select: dialect.cappedText(entity, c, share, { value: c, size: sizeOf(c) }) };
      capped.set(field, cached);
    }
    select.push(...cached.select);
  }
  return select;
}

/** A page read with `cappedColumns`: what it holds as stored, and the values it left unread, by row id. */
export interface PageSizes {
  /** at most what it holds: each character of the values read counted as 3 bytes */
  atMost: number;
  /** what it holds: the values read by their UTF-8 bytes (a pass over their text) */
  bytes(): number;
  unread?: Map<unknown, string[]>;
}

/**
 * The bytes of a page read with `cappedColumns`, counting only the values the caller may read (§9.4): each value
 * read by its UTF-8 bytes (what octet_length answers), each left unread by its size.
 */
export function pageSizes(rows: Row[], cost: RowCost, rowFields: RowFields): PageSizes {
  let known = rows.length * cost.fixed;
  let chars = 0;
  let unread: Map<unknown, string[]> | undefined;
  for (const row of rows)
    for (const { field } of cost.measured) {
      const c = field.name;
      if (!shownOn(row, rowFields, c)) continue;
      const value = row[c];
      if (typeof value === "string") {
        chars += value.length;
        continue;
      }
      // a blob stored in a text column (by SQL written outside Citadel) is read by its bytes too
      if (value instanceof Uint8Array) {
        known += value.byteLength;
        continue;
      }
      const size = typeof value === "number" ? value : value === null ? row[sizeOf(c)] : undefined;
      if (size === null || size === undefined) continue;
      known += Number(size);
      unread ??= new Map();
      const columns = unread.get(row.id);
      if (columns) columns.push(c);
      else unread.set(row.id, [c]);
    }
  const bytes = () => {
    let read = 0;
    for (const row of rows)
      for (const { field } of cost.measured) {
        const value = row[field.name];
        if (typeof value === "string" && shownOn(row, rowFields, field.name)) read += utf8Bytes(value);
      }
    return known + read;
  };
  return { atMost: known + UTF8_PER_UNIT * chars, bytes, unread };
}

/**
 * Read the values a page left unread (their sizes fit the budget: `pageSizes` was spent first), by id under the
 * page's own filter and rules: a row no longer readable meanwhile is left out, a value no longer shown stays
 * hidden. Returns the page.
 */
export async function readOversized(
  db: Db,
  entity: string,
  filter: Filter,
  rows: Row[],
  unread: Map<unknown, string[]>,
  rowFields: RowFields,
): Promise<Row[]> {
  const wanted = [...new Set([...unread.values()].flat())];
  const query = db
    .selectFrom(entity)
    .select([`${entity}.id`, ...wanted.map((c) => `${entity}.${c}`)])
    .select(shownFlags(rowFields, wanted, entity))
    .where(`${entity}.id`, "in", [...unread.keys()] as number[]);
  const fetched = new Map(
    (await withFilter(query, filter, entity).execute()).map((r: Row) => [r.id, hideUnshown(r, rowFields)]),
  );
  return rows.filter((row) => {
    const columns = unread.get(row.id);
    if (!columns) return true;
    const now = fetched.get(row.id);
    if (!now) return false;
    // a value left unread is replaced (on SQLite its size stands in its place) or, no longer shown, removed
    for (const c of columns) {
      if (c in now) row[c] = now[c];
      else delete row[c];
    }
    return true;
  });
}

/**
 * 400 for a request past the byte budget `max`, at `path`: `what` it holds, and what to do (`remedy`), if anything.
 */
export function overBudget(
  path: string,
  what: string,
  max: number,
  details: Record<string, unknown> = {},
  remedy?: string,
): BadRequestError {
  const bound = `at most ${n(max)} bytes per request (max_response_bytes)`;
  return new BadRequestError(`${path}: ${what}; ${bound}${remedy ? `: ${remedy}` : ""}`, { path, ...details, max });
}

/**
 * What the rows `ids` of `entity` (those of them inside `filter`, when given) hold as stored, of the columns
 * `cost` counts (a field a rule shows on some rows only, where it is shown), summed in SQL, in slices the
 * dialect can bind.
 */
export async function bytesOfIds(
  db: Db,
  entity: string,
  ids: readonly number[],
  cost: RowCost,
  rowFields?: ReadonlyMap<string, Filter>,
  filter?: Filter,
): Promise<Measured> {
  const total: Measured = { rows: 0, bytes: 0 };
  const size = dialectOf(db).maxBindValues;
  for (let i = 0; i < ids.length; i += size) {
    let rows = db
      .selectFrom(entity)
      .select(`${entity}.id as ${MEASURED_ID}`)
      .where(`${entity}.id`, "in", ids.slice(i, i + size));
    if (filter) rows = withFilter(rows, filter, entity);
    const [measured] = await measure(db, entity, rows, cost, rowFields);
    total.rows += measured?.rows ?? 0;
    total.bytes += measured?.bytes ?? 0;
  }
  return total;
}

/** What a caller may read of an entity: its read scope's filter, fields and per-row field rules. */
export interface ReadView {
  filter: Filter;
  fields: readonly string[];
  rowFields?: ReadonlyMap<string, Filter>;
}

/** The cost of an entity's whole stored row, as its images carry it (once per entity). */
const wholeCosts = new WeakMap<CompiledEntity, RowCost>();
export function wholeRowCost(entity: CompiledEntity): RowCost {
  let cost = wholeCosts.get(entity);
  if (!cost) {
    cost = rowCost(entity, [...entity.fields.keys()], []);
    wholeCosts.set(entity, cost);
  }
  return cost;
}

/** What `read` may read of the rows `ids` of `entity`, as stored, counted as a page counts it (0: it reads none). */
export async function readableBytesOfIds(
  db: Db,
  entity: CompiledEntity,
  ids: readonly number[],
  read: ReadView | undefined,
): Promise<number> {
  if (!read) return 0;
  const cost = rowCost(entity, [...read.fields], []);
  return (await bytesOfIds(db, entity.name, ids, cost, read.rowFields, read.filter)).bytes;
}

/**
 * The grain in which values a caller cannot read count against the budget: each such value counts its whole
 * kibibytes only, so a refusal tells at most how many kibibytes a hidden value has, never its length (a caller
 * who can write values it cannot read could otherwise pad them to find the threshold, and the length with it).
 */
export const HIDDEN_GRAIN = 1024;

/**
 * The whole `HIDDEN_GRAIN`s of the text and json values of the rows `ids` that `read` may not read (hidden
 * fields, fields a rule hides on the row, rows outside its filter; undefined `read`: all), summed in SQL in
 * slices the dialect can bind. What they hold is less than that many grains plus one grain per value.
 */
export async function hiddenGrainsOfIds(
  db: Db,
  entity: CompiledEntity,
  ids: readonly number[],
  read: ReadView | undefined,
): Promise<number> {
  const dialect = dialectOf(db);
  const eb = expressionBuilder<never, never>();
  const terms = wholeRowCost(entity).measured.map(({ field: { name: c } }) => {
    const grains = sql<number>`coalesce(${dialect.byteLength(`z.${c}`)}, 0) / ${sql.lit(HIDDEN_GRAIN)}`;
    if (!read?.fields.includes(c)) return grains;
    const shown = and(read.filter, read.rowFields?.get(c) ?? TRUE);
    return sql<number>`case when ${compileFilter(eb, shown, "z")} then 0 else ${grains} end`;
  });
  if (terms.length === 0) return 0;
  let total = 0;
  for (let i = 0; i < ids.length; i += dialect.maxBindValues) {
    const row = await db
      .selectFrom(`${entity.name} as z`)
      .select(sql<number>`sum(${sql.join(terms, sql` + `)})`.as("grains"))
      .where("z.id", "in", ids.slice(i, i + dialect.maxBindValues))
      .executeTakeFirst();
    total += Number(row?.grains ?? 0);
  }
  return total;
}

/** What `values` take as a write stores them: an encrypted one as its ciphertext. */
function writtenBytes(entity: CompiledEntity, values: Row): number {
  let bytes = 2;
  for (const [name, value] of Object.entries(values)) {
    const plain = utf8Bytes(JSON.stringify(value) ?? "null");
    bytes += name.length + 4 + (entity.fields.get(name)?.encrypted ? sealed(plain) : plain);
  }
  return bytes;
}

/** Why a write's hidden values count: they are read whole for its images. */
export const IMAGED = "whose whole rows the audit trail or the change feed record";

/**
 * The budget of a write (§2.3), in SQL before it, only when the rows could pass it at their worst: what the
 * caller may read of the rows it reaches, as stored, plus the `values` it writes to each, must fit, for those rows
 * are its answer; and when mutation events are recorded (`images`), their values the caller cannot read must
 * fit too, apart and counted in whole `HIDDEN_GRAIN`s (`hiddenGrainsOfIds`), for each row's image is read whole.
 * Past either is 400 naming the budget, and nothing is written; the second refusal names no size. `path`: `id`
 * for a write to one row by id, `where` for the rows of a where.
 */
export async function checkWriteBytes(
  db: Db,
  entity: CompiledEntity,
  ids: number[],
  values: Row,
  max: number | undefined,
  read: ReadView | undefined,
  path: "id" | "where",
  images: boolean,
): Promise<void> {
  if (max === undefined || ids.length === 0) return;
  const extra = ids.length * writtenBytes(entity, values);
  const worst = levelWorst(ids.length, images || !read ? wholeRowCost(entity) : rowCost(entity, [...read.fields], []));
  if (worst + extra <= max) return;
  const bytes = (await readableBytesOfIds(db, entity, ids, read)) + extra;
  const [what, remedy] =
    path === "id"
      ? ["this row holds", "it is larger than one answer may be"]
      : [`the ${n(ids.length)} rows this write reaches hold`, "narrow the where"];
  if (bytes > max)
    throw overBudget(path, `${what} ${n(bytes)} bytes as stored with what it writes`, max, { bytes }, remedy);
  if (images && (await hiddenGrainsOfIds(db, entity, ids, read)) * HIDDEN_GRAIN > max)
    throw overBudget(path, `${what} more in values the caller cannot read, ${IMAGED}`, max, {}, remedy);
}
