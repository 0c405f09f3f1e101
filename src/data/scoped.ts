/**
 * The one enforcement point (§4.5): every read and write of a caller goes through a ScopedData, which asks the
 * guard for the scopes it needs, parses the caller's raw inputs against what the caller may read, and hands the
 * reads and writes their scopes. Nothing else builds a view or a WriteScopes, so no route and no module can
 * forget to AND a scope or make one up.
 */
import { BadRequestError, NotFoundError } from "../errors.js";
import { type Access, callerOf, type DataPermission, lacksPermission } from "../guard/access.js";
import { and, type Filter, fieldsOf, TRUE } from "../query/ast.js";
import {
  followRelation,
  parseListQuery,
  parseWhereInput,
  type QueryLimits,
  type RawListQuery,
  type ReadableView,
  requireKnownKeys,
  type Scope,
} from "../query/options.js";
import type { Row } from "./codec.js";
import type { DataEngine } from "./engine.js";
import type { ReadEvent } from "./events.js";
import { count, exists, type ListResult, list, readOne, relatedFilter, viewOf } from "./reads.js";
import { readableFields, type WriteScopes } from "./write-checks.js";
import { create, deleteMany, deleteOne, inTransaction, updateMany, updateOne } from "./writes.js";

/**
 * The body of a write: the value itself, or a function that reads it once the guard has allowed the write,
 * so a caller without the permission learns that first (403), not what was wrong with its body (400).
 */
export type Input = unknown;

const READ = "data.entity.read";

/** What a change-feed subscriber may see of one entity: its read scope (tenant included) AND its where. */
export interface Watch {
  entity: string;
  filter: Filter;
  /** the fields an event may show: those the caller may read, on every row or on some */
  fields: readonly string[];
  /** those of `fields` it may read only on some rows (§9.4), each with its rule: the rows where it may */
  rowFields: readonly (readonly [string, Filter])[];
}

/** What a caller without read permission may name in a where: the id alone. */
const ID_ONLY: Scope = { filter: TRUE, fields: new Set(["id"]) };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const bodyOf = async (input: Input): Promise<unknown> => (typeof input === "function" ? await input() : input);

/** A write to many rows names a where, and a non-empty one: an empty where would reach every row. */
function requireWhere(where: unknown): unknown {
  if (where === undefined || where === null || (isObject(where) && Object.keys(where).length === 0))
    throw new BadRequestError("where: a non-empty where is required for a write to many rows", { path: "where" });
  return where;
}

export class ScopedData {
  constructor(
    private readonly engine: DataEngine,
    readonly access: Access,
    private readonly limits: QueryLimits,
  ) {}

  /** The scope of a permission the caller holds; "role X lacks permission P on E" otherwise (§4.16). */
  private require(permission: DataPermission, entity: string, id?: number): Scope {
    const scope = this.access.find(permission, entity, id);
    if (!scope) throw lacksPermission(this.access, permission, entity);
    return scope;
  }

  /** The caller's view of an entity (404 for an unknown entity, 403 without read permission). */
  private view(entity: string, id?: number): ReadableView {
    this.engine.model(entity);
    const scope = this.require(READ, entity, id);
    return viewOf(this.engine.models, entity, scope, (target) => this.access.find(READ, target));
  }

  /** The scopes of a write (404 for an unknown entity, 403 without the permission). */
  private writeScopes(permission: DataPermission, entity: string, id?: number): WriteScopes {
    this.engine.model(entity);
    return {
      permission,
      caller: callerOf(this.access),
      userId: typeof this.access.subject.user?.id === "number" ? this.access.subject.user.id : undefined,
      write: this.require(permission, entity, id),
      read: this.access.find(READ, entity, id),
      readOf: (target) => this.access.find(READ, target),
      actor: this.access.subject,
      events: this.engine.events,
    };
  }

  /**
   * The where of a write to many rows: only readable fields may be named (only `id` without read
   * permission, so a write cannot probe what the caller may not read), and it must narrow.
   */
  private manyWhere(entity: string, scopes: WriteScopes, input: unknown): Filter {
    // with read permission, relation paths and $exists work here as in a read, each hop under its own read
    // scope (4.13); without it only `id` may be named, so no relation can be followed
    const related = scopes.read ? (target: string) => this.access.find(READ, target) : () => undefined;
    const view = viewOf(this.engine.models, entity, scopes.read ?? ID_ONLY, related);
    const where = parseWhereInput(view, requireWhere(input));
    if (where.kind === "const" && where.value)
      throw new BadRequestError("where: matches every row; a write to many rows needs a narrowing condition", {
        path: "where",
      });
    return where;
  }

  /**
   * Run a read and, when reads are heard (`audit.reads`), report it with the rows it returned and its time.
   * Only reads that answered are reported.
   */
  private async reported<T>(
    event: Omit<ReadEvent, "rows" | "durationMs">,
    read: () => Promise<T>,
    rows: (result: T) => number,
  ): Promise<T> {
    const events = this.engine.events;
    if (!events.hearsReads) return read();
    const start = performance.now();
    const result = await read();
    await events.read({ ...event, rows: rows(result), durationMs: performance.now() - start }, this.access.subject);
    return result;
  }

  /** A page of rows with its counts (§2.1); `raw` as it came from a query string or a JSON body. */
  async list(entity: string, raw: RawListQuery): Promise<ListResult> {
    const view = this.view(entity);
    return this.reported(
      { entity, kind: "list", where: raw.where },
      () => list(this.engine, view, parseListQuery(view, raw, this.limits)),
      (r) => r.data.length,
    );
  }

  async count(entity: string, where: unknown): Promise<number> {
    const view = this.view(entity);
    return this.reported(
      { entity, kind: "count", where },
      () => count(this.engine, view, parseWhereInput(view, where)),
      (n) => n,
    );
  }

  async exists(entity: string, where: unknown): Promise<boolean> {
    const view = this.view(entity);
    return this.reported(
      { entity, kind: "exists", where },
      () => exists(this.engine, view, parseWhereInput(view, where)),
      (found) => (found ? 1 : 0),
    );
  }

  /**
   * What a change-feed subscriber may see of an entity (§8.2): the rows of its read scope (its tenant's, §6)
   * that its where names, checked on each event when it is sent, and the fields it reads, those readable only
   * on some rows (§9.4) checked on each image the same way.
   */
  watch(entity: string, where: unknown): Watch {
    const view = this.view(entity);
    const fields = readableFields(this.engine.model(entity), view.scope);
    const rules = view.scope.rowFields;
    const asked = parseWhereInput(view, where);
    // updated_at moves on every write, hidden ones too: a stream filtering on it would be told of them, as a
    // create or a delete, where an update of hidden fields is no event (§8.2)
    if (fieldsOf(asked).has("updated_at"))
      throw new BadRequestError(
        "where: a change feed cannot filter on updated_at (it changes on every write); filter on created_at or your own fields",
      );
    return {
      entity,
      filter: and(view.scope.filter, asked),
      fields,
      rowFields: rules ? [...rules].filter(([f]) => fields.includes(f)) : [],
    };
  }

  /** One row (`select`, `with` from `raw`); 404 when missing or unreadable alike (§4.10). */
  async readOne(entity: string, id: number, raw: RawListQuery): Promise<Row> {
    const view = this.view(entity, id);
    return this.reported(
      { entity, kind: "read", id, where: undefined },
      () => readOne(this.engine, view, id, parseListQuery(view, raw, this.limits)),
      () => 1,
    );
  }

  /**
   * The rows related to one row (`GET /:entity/:id/:relation`), each under its own entity's read scope. The
   * parent's key and links are read under the parent's read scope, and the list in the same transaction.
   */
  async related(entity: string, id: number, name: string, raw: RawListQuery): Promise<ListResult> {
    return this.reported(
      { entity, kind: "related", id, where: raw.where },
      () => this.relatedRows(entity, id, name, raw),
      (r) => r.data.length,
    );
  }

  private relatedRows(entity: string, id: number, name: string, raw: RawListQuery): Promise<ListResult> {
    const parent = this.view(entity, id);
    const relation = parent.entity.relations.get(name);
    if (!relation) throw new NotFoundError(`unknown relation "${name}"`);
    return inTransaction(this.engine.db, async (db) => {
      const store = { db, models: this.engine.models };
      const base = await relatedFilter(store, parent, id, relation);
      this.view(relation.target); // 403 when the related entity is not readable at all
      const target = followRelation(parent, relation);
      // the key linking the rows is a field the caller may not read: as if there were no such relation
      if (!target) throw new NotFoundError(`unknown relation "${name}"`);
      return list(store, target, parseListQuery(target, raw, this.limits), base);
    });
  }

  /** Create one row (an object) or many (an array, all or nothing). */
  async create(entity: string, input: Input): Promise<Row | Row[]> {
    const scopes = this.writeScopes("data.entity.create", entity);
    return create(this.engine.db, this.engine.model(entity), await bodyOf(input), scopes);
  }

  async updateOne(entity: string, id: number, input: Input): Promise<Row> {
    const scopes = this.writeScopes("data.entity.update", entity, id);
    const max = this.limits.maxResponseBytes;
    return updateOne(this.engine.db, this.engine.model(entity), id, await bodyOf(input), scopes, max);
  }

  /** Update the rows a where names: `input` is `{ update, where }` (bknd's wire format). */
  async updateMany(entity: string, input: Input): Promise<Row[]> {
    const scopes = this.writeScopes("data.entity.update", entity);
    const body = await bodyOf(input);
    if (!isObject(body)) throw new BadRequestError("expected a JSON object { update, where }");
    requireKnownKeys(body, ["update", "where"]);
    const where = this.manyWhere(entity, scopes, body.where);
    const max = this.limits.maxResponseBytes;
    return updateMany(this.engine.db, this.engine.model(entity), where, body.update, scopes, max);
  }

  async deleteOne(entity: string, id: number): Promise<Row> {
    const scopes = this.writeScopes("data.entity.delete", entity, id);
    return deleteOne(this.engine.db, this.engine.model(entity), id, scopes, this.limits.maxResponseBytes);
  }

  /** Delete the rows a where names. */
  async deleteMany(entity: string, where: Input): Promise<Row[]> {
    const scopes = this.writeScopes("data.entity.delete", entity);
    const filter = this.manyWhere(entity, scopes, await bodyOf(where));
    return deleteMany(this.engine.db, this.engine.model(entity), filter, scopes, this.limits.maxResponseBytes);
  }
}
