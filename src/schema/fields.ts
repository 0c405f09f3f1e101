/** Field builders: each one produces a field in bknd's JSON shape `{ type, config }`. */

export type FieldType = "text" | "number" | "boolean" | "date" | "enum" | "json";

/** Field config as it appears in `schema.toJSON()` (bknd's names). */
export interface FieldConfig {
  required?: boolean;
  default_value?: unknown;
  unique?: boolean;
  hidden?: boolean;
  label?: string;
  description?: string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** text fields: `email` values are trimmed, lowercased and checked, so logins find them */
  format?: "email";
  minimum?: number;
  maximum?: number;
  integer?: boolean;
  /** date fields: "date" (YYYY-MM-DD) or "datetime" (ISO 8601) */
  type?: "date" | "datetime";
  /** enum fields */
  options?: { type: "strings"; values: string[] };
  /** the field's previous name: sync renames the column instead of seeing a drop (§1.4) */
  renamedFrom?: string;
  /** text and json fields: stored as AES-256-GCM ciphertext; `searchable` keeps a blind index for $eq/$in (§10) */
  encrypted?: { searchable?: boolean };
}

export interface FieldJSON {
  type: FieldType;
  config: FieldConfig;
}

/** Options accepted by every builder in bknd's object form, e.g. `text({ required: true })`. */
export type FieldOptions = Omit<FieldConfig, "options" | "type"> & { default?: unknown };

/** A declared field; chain methods return the same builder so `text().required().unique()` reads naturally. */
export class Field<T extends FieldType = FieldType> {
  readonly type: T;
  readonly config: FieldConfig;

  constructor(type: T, config: FieldConfig = {}) {
    this.type = type;
    this.config = config;
  }

  required(value = true): this {
    this.config.required = value;
    return this;
  }
  default(value: unknown): this {
    this.config.default_value = value;
    return this;
  }
  unique(value = true): this {
    this.config.unique = value;
    return this;
  }
  hidden(value = true): this {
    this.config.hidden = value;
    return this;
  }
  /** The field's previous name: sync renames that column, keeping its data (§1.4). */
  renamedFrom(previousName: string): this {
    this.config.renamedFrom = previousName;
    return this;
  }

  /**
   * Store the values encrypted (AES-256-GCM, §10.1); text and json fields. `searchable: true` (text) keeps a
   * keyed HMAC blind index, so `$eq`/`$in` (and `$ne`/`$nin`) can find a value without decrypting (§10.3).
   */
  encrypted(options: { searchable?: boolean } = {}): this {
    this.config.encrypted = options.searchable === undefined ? {} : { searchable: options.searchable };
    return this;
  }

  toJSON(): FieldJSON {
    const { encrypted, ...config } = this.config;
    return { type: this.type, config: encrypted ? { ...config, encrypted: { ...encrypted } } : config };
  }
}

export class TextField extends Field<"text"> {
  minLength(n: number): this {
    this.config.minLength = n;
    return this;
  }
  maxLength(n: number): this {
    this.config.maxLength = n;
    return this;
  }
  pattern(p: string | RegExp): this {
    this.config.pattern = typeof p === "string" ? p : p.source;
    return this;
  }
}

export class NumberField extends Field<"number"> {
  minimum(n: number): this {
    this.config.minimum = n;
    return this;
  }
  maximum(n: number): this {
    this.config.maximum = n;
    return this;
  }
  integer(value = true): this {
    this.config.integer = value;
    return this;
  }
}

function normalize(options: FieldOptions | undefined): FieldConfig {
  if (!options) return {};
  const { default: defaultValue, ...rest } = options;
  const config: FieldConfig = { ...rest };
  if (defaultValue !== undefined && config.default_value === undefined) config.default_value = defaultValue;
  if (options.pattern !== undefined) config.pattern = String(options.pattern);
  return config;
}

export const text = (options?: FieldOptions) => new TextField("text", normalize(options));
export const number = (options?: FieldOptions) => new NumberField("number", normalize(options));
export const boolean = (options?: FieldOptions) => new Field("boolean", normalize(options));
export const date = (options?: FieldOptions) => new Field("date", { ...normalize(options), type: "date" });
export const datetime = (options?: FieldOptions) => new Field("date", { ...normalize(options), type: "datetime" });
export const json = (options?: FieldOptions) => new Field("json", normalize(options));

/** `enumm({ enum: ["draft", "published"] })`, named as in bknd (`enum` is reserved). */
export const enumm = (options: FieldOptions & { enum: readonly string[] }) => {
  const { enum: values, ...rest } = options;
  return new Field("enum", { ...normalize(rest), options: { type: "strings", values: [...values] } });
};
