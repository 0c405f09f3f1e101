/** `em`, `entity`, `relation`, `index`: the schema DSL, producing bknd's `{ entities, relations, indices }`. */
import type { Field, FieldJSON } from "./fields.js";

export interface EntityJSON {
  type: "regular" | "system";
  fields: Record<string, FieldJSON>;
  config?: {
    name?: string;
    sort_field?: string;
    sort_dir?: "asc" | "desc";
    /** rules per field for every role (§9.4): `{ salary: { read: "@owns_record()", write: "@has_role('hr')" } }` */
    field_rules?: Record<string, { read?: string; write?: string }>;
  };
}

export type RelationType = "n:1" | "1:1" | "m:n";

export interface RelationConfig {
  mappedBy?: string;
  inversedBy?: string;
  required?: boolean;
  on_delete?: "set null" | "cascade" | "restrict";
  connectionTable?: string;
  with_limit?: number;
  /** many-to-one to `users` only: the row's owner, set by the server on create (§4.14) */
  owner?: boolean;
}

export interface RelationJSON {
  type: RelationType;
  source: string;
  target: string;
  config: RelationConfig;
}

export interface IndexJSON {
  entity: string;
  fields: string[];
  unique: boolean;
}

export interface SchemaJSON {
  entities: Record<string, EntityJSON>;
  relations: Record<string, RelationJSON>;
  indices: Record<string, IndexJSON>;
}

export class Entity<Name extends string = string> {
  constructor(
    readonly name: Name,
    readonly fields: Record<string, Field>,
    readonly config: EntityJSON["config"] = {},
  ) {}

  toJSON(): EntityJSON {
    const fields = Object.fromEntries(Object.entries(this.fields).map(([k, f]) => [k, f.toJSON()]));
    return { type: "regular", fields, config: this.config };
  }
}

/** Declare an entity; `id`, `created_at` and `updated_at` are added by Citadel. */
export function entity<Name extends string>(
  name: Name,
  fields: Record<string, Field> = {},
  config?: EntityJSON["config"],
): Entity<Name> {
  return new Entity(name, fields, config);
}

/** One declared relation; created by `relation(source, name?)` and finished by a cardinality method. */
export class RelationDeclaration {
  constructor(readonly json: RelationJSON) {}
}

export class IndexDeclaration {
  constructor(readonly json: IndexJSON) {}
}

type Sink = (declaration: RelationDeclaration | IndexDeclaration) => void;

class RelationStart {
  constructor(
    private readonly source: Entity,
    private readonly name: string | undefined,
    private readonly sink?: Sink,
  ) {}

  private make(type: RelationType, target: Entity, config: RelationConfig = {}) {
    const mappedBy = config.mappedBy ?? this.name ?? target.name;
    const declaration = new RelationDeclaration({
      type,
      source: this.source.name,
      target: target.name,
      config: { ...config, mappedBy },
    });
    this.sink?.(declaration);
    return declaration;
  }

  /** Many source rows point at one target row: adds `<name>_id` on the source. */
  manyToOne(target: Entity, config?: RelationConfig) {
    return this.make("n:1", target, config);
  }
  /** Like manyToOne with a unique `<name>_id`. */
  oneToOne(target: Entity, config?: RelationConfig) {
    return this.make("1:1", target, config);
  }
  /** A junction table `<source>_<target>` links both sides. */
  manyToMany(target: Entity, config?: RelationConfig) {
    return this.make("m:n", target, config);
  }
}

class IndexStart {
  constructor(
    private readonly target: Entity,
    private readonly sink?: Sink,
  ) {}
  on(fields: string[], unique = false) {
    const declaration = new IndexDeclaration({ entity: this.target.name, fields, unique });
    this.sink?.(declaration);
    return declaration;
  }
}

/** `relation(posts, "author").manyToOne(users)`: the docs' form (the name is optional). */
export const relation = (source: Entity, name?: string) => new RelationStart(source, name);
/** `index(posts).on(["title"], true)` */
export const index = (target: Entity) => new IndexStart(target);

type Helpers = { relation: typeof relation; index: typeof index };
// biome-ignore lint/suspicious/noConfusingVoidType: bknd's form returns nothing
type Declarations = (RelationDeclaration | IndexDeclaration)[] | undefined | void;

export class Schema<E extends Record<string, Entity>> {
  constructor(
    readonly entities: E,
    readonly relations: RelationJSON[],
    readonly indices: IndexJSON[],
  ) {}

  toJSON(): SchemaJSON {
    const entities: Record<string, EntityJSON> = {};
    for (const e of Object.values(this.entities)) entities[e.name] = e.toJSON();
    const relations: Record<string, RelationJSON> = {};
    for (const r of this.relations) relations[relationKey(r)] = r;
    const indices: Record<string, IndexJSON> = {};
    for (const i of this.indices) indices[`idx_${i.entity}_${i.fields.join("_")}`] = i;
    return { entities, relations, indices };
  }
}

const CODES: Record<RelationType, string> = { "n:1": "n1", "1:1": "11", "m:n": "mn" };
const relationKey = (r: RelationJSON) => `${CODES[r.type]}_${r.source}_${r.target}_${r.config.mappedBy}`;

/**
 * Build a schema. The callback's first argument holds the entities and the helpers `relation`/`index`, the
 * second the entities again, so both the docs' form `({ posts, users }) => [relation(posts, "author")...]`
 * and bknd's `({ relation, index }, { posts, users }) => { relation(posts).manyToOne(users) }` work (an
 * entity named `relation` or `index` is shadowed by the helper in the first argument).
 */
export function em<E extends Record<string, Entity>>(
  entities: E,
  declare?: (first: E & Helpers, entities: E) => Declarations,
): Schema<E> {
  const collected: (RelationDeclaration | IndexDeclaration)[] = [];
  const sink: Sink = (d) => collected.push(d);
  if (declare) {
    const helpers: Helpers = {
      relation: ((source: Entity, name?: string) => new RelationStart(source, name, sink)) as typeof relation,
      index: ((target: Entity) => new IndexStart(target, sink)) as typeof index,
    };
    for (const d of declare({ ...entities, ...helpers }, entities) ?? []) if (!collected.includes(d)) collected.push(d);
  }
  const relations = collected.filter((d) => d instanceof RelationDeclaration).map((d) => d.json);
  const indices = collected.filter((d) => d instanceof IndexDeclaration).map((d) => d.json);
  return new Schema(entities, relations, indices);
}
