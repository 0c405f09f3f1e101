/**
 * Which rows a subscriber may see (§8.2), and which of its fields (§9.4), decided in SQL like every read: each
 * row image of an event becomes a row built by hand, and each subscriber's filter (its read scope, its tenant,
 * its where) one CASE column over them, as is the rule of each field it may read only on some rows. A filter
 * that follows relations runs its subqueries on the database as it is now, when the event is sent. One query
 * answers a batch of images for every distinct filter.
 */
import { sql } from "kysely";
import type { Row } from "../data/codec.js";
import type { EntityModel } from "../data/models.js";
import type { Watch } from "../data/scoped.js";
import { literalRow } from "../data/write-checks.js";
import { type Db, dialectOf } from "../db/connection.js";
import { type Filter, isOuterRef, mapOperands, someNode } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";

/** Filters per query: each is one column of the answer. */
const FILTERS_PER_QUERY = 64;
/** Images per query: each is one arm of a UNION ALL, and SQLite takes at most 500 arms. */
const IMAGES_PER_QUERY = 250;
const TAG = "__image";

/** The values a filter binds (a where may bind thousands: `$in` lists). */
function bindsOf(filter: Filter): number {
  let count = 0;
  mapOperands(filter, (operand) => {
    if (!isOuterRef(operand)) count++;
    return operand;
  });
  return count;
}

/** Whether a filter reads other rows than the one it is about (relation paths, `$exists`). */
export const followsRelations = (filter: Filter): boolean => someNode(filter, (node) => node.kind === "exists");

/**
 * Groups of filters whose bound values, with those of at least a few images, fit one statement: a where of
 * thousands of values gets a query of its own rather than pushing everyone's past the engine's limit.
 */
function filterGroups(filters: (readonly [Filter, number])[], budget: number): (readonly [Filter, number])[][] {
  const groups: (readonly [Filter, number])[][] = [];
  let group: (readonly [Filter, number])[] = [];
  let used = 0;
  for (const entry of filters) {
    const binds = bindsOf(entry[0]);
    if (group.length > 0 && (group.length >= FILTERS_PER_QUERY || used + binds > budget)) {
      groups.push(group);
      [group, used] = [[], 0];
    }
    group.push(entry);
    used += binds;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * `answer[i][j]`: whether row image `images[i]` lies inside `filters[j]`. Constant filters take no SQL; the
 * others take one query per group of filters and batch of images, within the engine's bind limit.
 */
async function holds(db: Db, model: EntityModel, images: Row[], filters: Filter[]): Promise<boolean[][]> {
  const answer = images.map(() => filters.map((f) => f.kind === "const" && f.value));
  const open = filters.map((f, j) => [f, j] as const).filter(([f]) => f.kind !== "const");
  if (open.length === 0 || images.length === 0) return answer;
  const entity = model.entity.name;
  const encoded = images.map((row) => model.codec.stored(row));
  const limit = dialectOf(db).maxBindValues;
  const perImage = model.entity.fields.size;
  // half the statement's values for the filters, the rest for the images
  for (const group of filterGroups(open, Math.floor(limit / 2))) {
    const filterBinds = group.reduce((n, [f]) => n + bindsOf(f), 0);
    const imagesPerQuery = Math.max(1, Math.min(IMAGES_PER_QUERY, Math.floor((limit - filterBinds) / perImage)));
    for (let start = 0; start < images.length; start += imagesPerQuery) {
      const rows = encoded
        .slice(start, start + imagesPerQuery)
        .map((row, k) => literalRow(db, model, (c) => row[c] ?? null, { [TAG]: start + k }));
      const from = sql`(${sql.join(rows, sql` union all `)})`.as(entity);
      const result = await db
        .selectFrom(from)
        .select((eb) => [
          sql<number>`${sql.ref(TAG)}`.as(TAG),
          ...group.map(([filter], k) =>
            sql<number>`case when ${compileFilter(eb, filter, entity)} then 1 else 0 end`.as(`f${k}`),
          ),
        ])
        .execute();
      for (const row of result as Record<string, unknown>[]) {
        const i = Number(row[TAG]);
        group.forEach(([, j], k) => {
          answer[i]![j] = Number(row[`f${k}`]) === 1;
        });
      }
    }
  }
  return answer;
}

/** What SQL is asked for a stream: its filter and the rules of its row fields, each with a key. */
export interface Decided {
  watch: Watch;
  filterKey: string;
  /** in the order of `watch.rowFields` */
  ruleKeys: readonly string[];
}

/** What a stream sees of each image (an index into the images): the row, and the row fields hidden on it. */
export interface Sight {
  sees(image: number): boolean;
  /** the row fields whose rule does not hold on an image it sees (§9.4) */
  hidden(image: number): string[];
}

/**
 * The sight of every stream on a batch of images, from one `holds` over every distinct filter: streams' filters
 * and their row fields' rules alike, each decided once however many streams share it.
 */
export async function sightsOf<S extends Decided>(
  db: Db,
  model: EntityModel,
  images: Row[],
  streams: readonly S[],
): Promise<Map<S, Sight>> {
  const columns = new Map<string, number>();
  const filters: Filter[] = [];
  const column = (key: string, filter: Filter) => {
    if (!columns.has(key)) columns.set(key, filters.push(filter) - 1);
    return columns.get(key)!;
  };
  const asked = streams.map((s) => ({
    row: column(s.filterKey, s.watch.filter),
    rules: s.watch.rowFields.map(([, rule], k) => column(s.ruleKeys[k]!, rule)),
  }));
  const answer = await holds(db, model, images, filters);
  return new Map(
    streams.map((s, n) => {
      const { row, rules } = asked[n]!;
      const { rowFields } = s.watch;
      const sight: Sight = {
        sees: (image) => image >= 0 && answer[image]![row]!,
        hidden: (image) =>
          rowFields.length === 0 ? [] : rowFields.filter((_, k) => !answer[image]![rules[k]!]).map(([f]) => f),
      };
      return [s, sight];
    }),
  );
}
