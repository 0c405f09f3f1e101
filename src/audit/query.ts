/**
 * Listing the trail (§7.4) with the data API's own `where`, `sort`, `limit` and `offset`: the table is
 * described as an entity, so the one query parser and compiler serve it, and a tenant's scope is one filter.
 */
import { buildModels } from "../data/models.js";
import { type ListResult, list, viewOf } from "../data/reads.js";
import type { Db } from "../db/connection.js";
import { type Filter, TRUE } from "../query/ast.js";
import { parseListQuery, type QueryLimits, type RawListQuery } from "../query/options.js";
import type { ColumnType, CompiledEntity, CompiledField } from "../schema/compiled.js";
import { AUDIT_TABLE } from "./store.js";

const field = (name: string, type: ColumnType, config: CompiledField["config"] = {}): [string, CompiledField] => [
  name,
  { name, type, config, system: name === "id", hidden: false },
];

const ENTITY: CompiledEntity = {
  name: AUDIT_TABLE,
  fields: new Map([
    field("id", "primary"),
    field("at", "text"),
    field("action", "text"),
    field("entity", "text"),
    field("row_id", "number", { integer: true }),
    field("account_id", "number", { integer: true }),
    field("actor", "json"),
    field("request_id", "text"),
    field("changes", "json"),
    field("reason", "text"),
    field("policy_hash", "text"),
    field("prev_hash", "text"),
    field("hash", "text"),
  ]),
  relations: new Map(),
  defaultSort: { field: "id", dir: "asc" },
};

const MODELS = buildModels({
  entities: new Map([[AUDIT_TABLE, ENTITY]]),
  junctions: [],
  indices: [],
  foreignKeys: [],
  retiredIndices: [],
});

/** A page of entries; `tenant` (a tenant-bound reader's account) narrows them to that account's (§7.4). */
export function listEntries(db: Db, raw: RawListQuery, limits: QueryLimits, tenant?: number): Promise<ListResult> {
  const scope: Filter =
    tenant === undefined ? TRUE : { kind: "compare", field: "account_id", op: "$eq", value: tenant };
  const view = viewOf(MODELS, AUDIT_TABLE, { filter: scope }, () => undefined);
  return list({ db, models: MODELS }, view, parseListQuery(view, raw, limits));
}
