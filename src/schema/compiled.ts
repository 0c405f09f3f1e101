/** The schema as the engine uses it: every column, every relation resolved from both sides. */
import type { Keyring } from "../data/keyring.js";
import type { FieldConfig } from "./fields.js";

/** `primary` is `id`; `timestamp` is created_at/updated_at; `reference` is a foreign key column like `author_id`. */
export type ColumnType =
  | "primary"
  | "timestamp"
  | "reference"
  | "text"
  | "number"
  | "boolean"
  | "date"
  | "enum"
  | "json";

export interface CompiledField {
  name: string;
  type: ColumnType;
  config: FieldConfig;
  /** System fields are set by Citadel and never writable through the API. */
  system: boolean;
  /** Hidden fields are never readable, writable or nameable through the data API. */
  hidden: boolean;
  /** §10: the field's values are stored encrypted */
  encrypted?: EncryptedField;
  /** the encrypted field whose blind index this hidden column holds (`ssn__bidx` holds `ssn`'s) */
  indexOf?: string;
}

/** How an encrypted field is stored (§10). */
export interface EncryptedField {
  /** `entity.field`: what its values are bound to (their additional authenticated data) */
  context: string;
  /** the context of the field's earlier name (`renamedFrom`): its values were sealed for that one */
  previous?: string;
  /** the hidden blind index column of a searchable field (`<field>__bidx`) */
  index?: string;
  /** the keys, attached at startup (`attachKeyring`): startup refuses encrypted fields without any */
  keyring?: Keyring;
}

export type RelationPath =
  /** this row holds the key: `posts.author_id -> users.id` */
  | { kind: "local"; column: string }
  /** the other row holds the key: `comments.post_id -> posts.id` */
  | { kind: "remote"; column: string }
  /** a junction table links both sides */
  | { kind: "junction"; table: string; selfColumn: string; otherColumn: string };

export interface CompiledRelation {
  name: string;
  entity: string;
  target: string;
  cardinality: "one" | "many";
  path: RelationPath;
  withLimit: number;
}

export interface CompiledEntity {
  name: string;
  fields: Map<string, CompiledField>;
  relations: Map<string, CompiledRelation>;
  defaultSort: { field: string; dir: "asc" | "desc" };
  /** the key column of the owner relation to `users` (§4.14), when one is declared */
  owner?: string;
  /** the tenant scope column (§6), on a tenant-scoped entity */
  tenantField?: string;
}

export interface CompiledJunction {
  table: string;
  left: { column: string; entity: string };
  right: { column: string; entity: string };
}

export interface CompiledIndex {
  name: string;
  entity: string;
  columns: string[];
  unique: boolean;
  /** a partial index over the rows where this column is NULL */
  whereNull?: string;
}

export interface CompiledForeignKey {
  entity: string;
  column: string;
  target: string;
  onDelete: "set null" | "cascade" | "restrict";
  unique: boolean;
  required: boolean;
}

/** Tenant isolation as the schema carries it (§6): the tenant table and the entities scoped by its column. */
export interface CompiledTenancy {
  entity: string;
  field: string;
  /** every scoped entity (users among them when auth is on); never the tenant entity */
  scoped: ReadonlySet<string>;
  /** the tenant entity's visible fields */
  tenantFields: readonly string[];
  /**
   * The tenant entity's fields under a unique index: unique across accounts, so only an unbound caller
   * (superadmin, server code) may write them; a 409 on them would tell one tenant about another (§6.2).
   */
  unique: ReadonlySet<string>;
}

export interface CompiledSchema {
  entities: Map<string, CompiledEntity>;
  junctions: CompiledJunction[];
  indices: CompiledIndex[];
  foreignKeys: CompiledForeignKey[];
  /** indexes to drop when they exist: a unique index made per tenant replaces the global one (§6.3) */
  retiredIndices: string[];
  tenancy?: CompiledTenancy;
}
