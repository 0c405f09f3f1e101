/**
 * The data engine: every read and write goes through here with the guard's scopes, so the row filter is
 * always ANDed into the SQL as a whole and writes are checked against it inside their transaction.
 */
import type { Db } from "../db/connection.js";
import { BadRequestError, CitadelError, NotFoundError, ValidationError } from "../errors.js";
import { and, FALSE, type Filter } from "../query/ast.js";
import { withFilter } from "../query/compile.js";
import type { ListQuery, ReadableView, Scope } from "../query/options.js";
import type { CompiledRelation } from "../schema/compiled.js";
import type { Row } from "./codec.js";
import { translateDbError } from "./db-errors.js";
import {
  checkReferences,
  checkWritableFields,
  checkWritten,
  countRows,
  locate,
  readableFields,
  readBack,
  targets,
  type WriteScopes,
} from "./write-checks.js";

export type { WriteScopes } from "./write-checks.js";

import type { EntityModel, Models } from "./models.js";
import { columnsFor, expand, pick } from "./relations.js";

export interface ListResult {
  data: Row[];
  meta: { items: number; count: number; total: number; limit: number; offset: number };
}

const now = () => new Date().toISOString();
const isObject = (v: unknown): v is Row => typeof v === "object" && v !== null && !Array.isArray(v);

export class DataEngine {
  constructor(
    readonly db: Db,
    readonly models: Models,
  ) {}

  model(entity: string): EntityModel {
    const model = this.models.get(entity);
    if (!model) throw new NotFoundError(`unknown entity "${entity}"`);
    return model;
  }

  /** The caller's view of an entity; `relatedScope` answers the read scope of a related entity, if any. */
  view(entity: string, scope: Scope, relatedScope: (entity: string) => Scope | undefined): ReadableView {
    const model = this.model(entity);
    const readable = new Set(readableFields(model, scope));
    return {
      entity: model.entity,
      scope,
      resolve: (name) => (readable.has(name) ? model.entity.fields.get(name) : undefined),
      related: (relation: CompiledRelation) => {
        const target = relatedScope(relation.target);
        return target ? this.view(relation.target, target, relatedScope) : undefined;
      },
      other: (name: string) => {
        const target = this.models.has(name) ? relatedScope(name) : undefined;
        return target ? this.view(name, target, relatedScope) : undefined;
      },
    };
  }

  /** The rows of one page, decoded, expanded (`with`) and shaped to what the caller may read. */
  private async page(view: ReadableView, query: ListQuery, filter: Filter): Promise<Row[]> {
    const entity = view.entity.name;
    const model = this.model(entity);
    const output = query.select ?? readableFields(model, view.scope);
    let builder = withFilter(
      this.db.selectFrom(entity).select(columnsFor(output, query.with).map((c) => `${entity}.${c}`)),
      filter,
      entity,
    );
    for (const k of query.sort) builder = builder.orderBy(`${entity}.${k.field}`, k.dir);
    if (query.offset > 0) builder = builder.offset(query.offset);
    const rows = await builder.limit(query.limit).execute();
    for (const r of rows) model.codec.decode(r);
    await expand(this.db, this.models, rows, query.with);
    return rows.map((r) => pick(r, [...output, ...query.with.map((w) => w.relation.name)]));
  }

  /** List rows (§2.1): the scope's filter ANDed with the caller's where as a whole (§4.3a). */
  async list(view: ReadableView, query: ListQuery, base?: Filter): Promise<ListResult> {
    const entity = view.entity.name;
    const visible = and(view.scope.filter, base);
    const filter = and(visible, query.where);
    const data = await this.page(view, query, filter);
    // A short page that starts inside the result already tells how many rows match: no count query.
    const exact = data.length < query.limit && (data.length > 0 || query.offset === 0);
    const count = exact ? query.offset + data.length : await countRows(this.db, entity, filter);
    const unfiltered = query.where.kind === "const" && query.where.value;
    const total = unfiltered ? count : await countRows(this.db, entity, visible);
    return { data, meta: { items: data.length, count, total, limit: query.limit, offset: query.offset } };
  }

  async count(view: ReadableView, where: Filter): Promise<number> {
    return countRows(this.db, view.entity.name, and(view.scope.filter, where));
  }

  async exists(view: ReadableView, where: Filter): Promise<boolean> {
    const entity = view.entity.name;
    const query = this.db.selectFrom(entity).select("id").limit(1);
    const row = await withFilter(query, and(view.scope.filter, where), entity).executeTakeFirst();
    return row !== undefined;
  }

  /** One row by id, or 404 when it does not exist or lies outside the scope (indistinguishable, §4.10). */
  async readOne(view: ReadableView, id: number, query: Pick<ListQuery, "select" | "with">): Promise<Row> {
    const byId: Filter = { kind: "compare", field: "id", op: "$eq", value: id };
    const [row] = await this.page(
      view,
      { where: and(), sort: [], select: query.select, with: query.with, limit: 1, offset: 0 },
      and(view.scope.filter, byId),
    );
    if (!row) throw new NotFoundError();
    return row;
  }

  /** The filter selecting the rows related to one parent row (reference routes). */
  async relatedFilter(parentEntity: string, parentId: number, relation: CompiledRelation): Promise<Filter> {
    const path = relation.path;
    if (path.kind === "remote") return { kind: "compare", field: path.column, op: "$eq", value: parentId };
    if (path.kind === "local") {
      const row = await this.db
        .selectFrom(parentEntity)
        .select(path.column)
        .where("id", "=", parentId)
        .executeTakeFirst();
      const key = row?.[path.column];
      return typeof key === "number" ? { kind: "compare", field: "id", op: "$eq", value: key } : FALSE;
    }
    const links = await this.db
      .selectFrom(path.table)
      .select(path.otherColumn)
      .where(path.selfColumn, "=", parentId)
      .execute();
    return { kind: "in", field: "id", negated: false, values: links.map((l) => l[path.otherColumn] as number) };
  }

  private async transaction<T>(work: (trx: Db) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction().execute(work);
    } catch (error) {
      if (error instanceof CitadelError) throw error;
      throw translateDbError(error) ?? error;
    }
  }

  /** Create one or many rows, all or nothing (§2.4, §4.6). */
  async create(entity: string, input: unknown, scopes: WriteScopes): Promise<Row | Row[]> {
    const model = this.model(entity);
    const many = Array.isArray(input);
    const items = many ? input : [input];
    if (items.length === 0) throw new BadRequestError("expected at least one row");
    if (items.length > 1000) throw new BadRequestError("at most 1000 rows per create");
    const values = items.map((item, i) => {
      if (!isObject(item)) throw new BadRequestError(many ? `[${i}]: expected an object` : "expected a JSON object");
      checkWritableFields(item, scopes, entity);
      try {
        return model.validator.create(item);
      } catch (error) {
        if (!(error instanceof ValidationError) || !many) throw error;
        throw new ValidationError(Object.fromEntries(Object.entries(error.fields).map(([k, v]) => [`[${i}].${k}`, v])));
      }
    });
    const rows = await this.transaction(async (trx) => {
      const ids: number[] = [];
      for (const v of values) {
        const at = now();
        const row = await trx
          .insertInto(entity)
          .values({ ...model.codec.encode(v), created_at: at, updated_at: at })
          .returning("id")
          .executeTakeFirstOrThrow();
        ids.push(Number(row.id));
      }
      await checkWritten(trx, entity, ids, scopes);
      await checkReferences(trx, model, values, scopes);
      return readBack(trx, model, ids, scopes.read);
    });
    return many ? rows : rows[0]!;
  }

  async updateOne(entity: string, id: number, input: unknown, scopes: WriteScopes): Promise<Row> {
    const model = this.model(entity);
    if (!isObject(input)) throw new BadRequestError("expected a JSON object");
    checkWritableFields(input, scopes, entity);
    const values = model.validator.update(input);
    return this.transaction(async (trx) => {
      await locate(trx, entity, id, scopes);
      await trx
        .updateTable(entity)
        .set({ ...model.codec.encode(values), updated_at: now() })
        .where("id", "=", id)
        .execute();
      await checkWritten(trx, entity, [id], scopes);
      await checkReferences(trx, model, [values], scopes);
      return (await readBack(trx, model, [id], scopes.read))[0]!;
    });
  }

  async updateMany(entity: string, where: Filter, input: unknown, scopes: WriteScopes): Promise<Row[]> {
    const model = this.model(entity);
    if (!isObject(input)) throw new BadRequestError("update: expected a JSON object");
    checkWritableFields(input, scopes, entity);
    const values = model.validator.update(input);
    return this.transaction(async (trx) => {
      const ids = await targets(trx, entity, where, scopes);
      if (ids.length === 0) return [];
      await trx
        .updateTable(entity)
        .set({ ...model.codec.encode(values), updated_at: now() })
        .where("id", "in", ids)
        .execute();
      await checkWritten(trx, entity, ids, scopes);
      await checkReferences(trx, model, [values], scopes);
      return readBack(trx, model, ids, scopes.read);
    });
  }

  async deleteOne(entity: string, id: number, scopes: WriteScopes): Promise<Row> {
    const model = this.model(entity);
    return this.transaction(async (trx) => {
      await locate(trx, entity, id, scopes);
      const [row] = await readBack(trx, model, [id], scopes.read);
      await trx.deleteFrom(entity).where("id", "=", id).execute();
      return row!;
    });
  }

  async deleteMany(entity: string, where: Filter, scopes: WriteScopes): Promise<Row[]> {
    const model = this.model(entity);
    return this.transaction(async (trx) => {
      const ids = await targets(trx, entity, where, scopes);
      if (ids.length === 0) return [];
      const rows = await readBack(trx, model, ids, scopes.read);
      await trx.deleteFrom(entity).where("id", "in", ids).execute();
      return rows;
    });
  }
}
