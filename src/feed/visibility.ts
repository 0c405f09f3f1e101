/**
 * Which rows a subscriber may see (§8.2), decided in SQL like every read: each row image of an event becomes a
 * row built by hand, and each subscriber's filter (its read scope, its tenant, its where) one CASE column over
 * them. A filter that follows relations runs its subqueries on the database as it is now, when the event is
 * sent. One query answers a batch of images for every distinct filter.
 */
import { sql } from "kysely";
import type { Row } from "../data/codec.js";
import type { EntityModel } from "../data/models.js";
import { literalRow } from "../data/write-checks.js";
import { type Db, dialectOf } from "../db/connection.js";
import type { Filter } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";

/** Filters per query: each is one column of the answer. */
const FILTERS_PER_QUERY = 64;
const TAG = "__image";

/**
 * `answer[i][j]`: whether row image `images[i]` lies inside `filters[j]`. Constant filters take no SQL; the
 * others take one query per batch of images that fits the bind limit (and per 64 filters).
 */
export async function holds(db: Db, model: EntityModel, images: Row[], filters: Filter[]): Promise<boolean[][]> {
  const answer = images.map(() => filters.map((f) => f.kind === "const" && f.value));
  const open = filters.map((f, j) => [f, j] as const).filter(([f]) => f.kind !== "const");
  if (open.length === 0 || images.length === 0) return answer;
  const entity = model.entity.name;
  const encoded = images.map((row) => model.codec.encode(row));
  // the images' values take the bind parameters the filters leave (a filter binds a few dozen at most)
  const perImage = model.entity.fields.size + 1;
  const imagesPerQuery = Math.max(1, Math.floor(dialectOf(db).maxBindValues / 2 / perImage));
  for (let f = 0; f < open.length; f += FILTERS_PER_QUERY) {
    const group = open.slice(f, f + FILTERS_PER_QUERY);
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
