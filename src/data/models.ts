/** Everything derived once per entity at startup: codec, validator and the fields readable by default. */
import type { CompiledEntity, CompiledField, CompiledSchema } from "../schema/compiled.js";
import { type Dependent, linkDependents } from "./cascade.js";
import { buildCodec, type EntityCodec } from "./codec.js";
import { buildValidator, type EntityValidator } from "./validate.js";

export interface EntityModel {
  entity: CompiledEntity;
  codec: EntityCodec;
  validator: EntityValidator;
  /** every non-hidden field, in declaration order */
  visibleFields: string[];
  /** the hidden blind index columns of searchable encrypted fields (§10.3): written with them */
  indexColumns: string[];
  /** the foreign keys of other entities that a delete of this one's rows cascades to or sets to NULL */
  dependents: Dependent[];
  /** the foreign keys between tenant-scoped entities (§6) from this one's rows (`out`) and to them (`in`) */
  tenantLinks: { out: TenantLink[]; in: TenantLink[] };
}

/** A foreign key from a tenant-scoped entity's `column` to another scoped entity, `target`. */
export interface TenantLink {
  entity: string;
  column: string;
  target: string;
}

export type Models = Map<string, EntityModel>;

export function buildModels(schema: CompiledSchema): Models {
  const models: Models = new Map();
  for (const entity of schema.entities.values()) {
    const indexed = new Set(schema.indices.filter((i) => i.entity === entity.name).flatMap((i) => i.columns));
    models.set(entity.name, {
      entity,
      codec: buildCodec(entity),
      validator: buildValidator(entity, indexed),
      visibleFields: [...entity.fields.values()].filter((f: CompiledField) => !f.hidden).map((f) => f.name),
      indexColumns: [...entity.fields.values()].filter((f) => f.indexOf !== undefined).map((f) => f.name),
      dependents: [],
      tenantLinks: { out: [], in: [] },
    });
  }
  linkDependents(schema, models);
  linkTenants(schema, models);
  return models;
}

/** Give each tenant-scoped model the keys between scoped entities that start or end at it (at startup). */
function linkTenants(schema: CompiledSchema, models: Models): void {
  for (const { entity, column, target } of schema.foreignKeys) {
    const from = models.get(entity);
    const to = models.get(target);
    if (from?.entity.tenantField === undefined || to?.entity.tenantField === undefined) continue;
    from.tenantLinks.out.push({ entity, column, target });
    to.tenantLinks.in.push({ entity, column, target });
  }
}
