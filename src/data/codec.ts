/**
 * Converts between API values and storage: json is text; booleans are booleans, which the dialect binds as
 * the engine stores them (SQLite: 0/1) and which come back as the driver reads them; encrypted fields are
 * AES-256-GCM ciphertext and a searchable one's blind index (§10, keyring.ts).
 *
 * Three forms of a row: stored (columns as in the database), API values (`decode`), and the image mutation
 * events carry (`image`): decoded like API values except that encrypted fields stay ciphertext and blind
 * indexes stay, so the plaintext never reaches the audit trail or the outbox; the feed `open`s an image when
 * it sends it.
 */
import type { CompiledEntity, EncryptedField } from "../schema/compiled.js";
import type { Keyring } from "./keyring.js";
import { IntegrityError } from "./keyring.js";

export type Row = Record<string, unknown>;

export interface EntityCodec {
  /** API values → stored columns (encrypts; a searchable field's index column is added beside it). */
  encode(values: Row): Row;
  /** Stored columns → API values, in place (decrypts; index columns removed). Throws IntegrityError. */
  decode(row: Row): Row;
  /** Stored columns → an event image, in place: decoded, encrypted fields and their indexes kept as stored. */
  image(row: Row): Row;
  /** An event image → stored columns (the inverse of `image`). */
  stored(image: Row): Row;
  /** An event image → API values, as a copy (decrypts). Throws IntegrityError. */
  open(image: Row): Row;
  /** The encrypted fields of `values`, encoded again (fresh IVs), or undefined when it has none. */
  resealed(values: Row): Row | undefined;
}

interface Encrypted {
  name: string;
  json: boolean;
  spec: EncryptedField;
  keyring: Keyring;
}

/** Decrypt one stored value of `field`: under its context, or the context of its earlier name. */
function reveal(field: Encrypted, entity: string, stored: unknown, id: unknown): unknown {
  const fail = (reason: string): never => {
    throw new IntegrityError(entity, field.name, reason, typeof id === "number" ? id : undefined);
  };
  if (typeof stored !== "string") return fail("not an encrypted value");
  let plain: string;
  try {
    plain = field.keyring.open(stored, field.spec.context);
  } catch (error) {
    const previous = field.spec.previous;
    try {
      if (!previous) throw error;
      plain = field.keyring.open(stored, previous);
    } catch {
      return fail(error instanceof Error ? error.message : String(error));
    }
  }
  if (!field.json) return plain;
  try {
    return JSON.parse(plain);
  } catch {
    return fail("not JSON");
  }
}

/** Build the codec of one entity (at startup, once its encrypted fields have their keyring). */
export function buildCodec(entity: CompiledEntity): EntityCodec {
  const booleans = new Set<string>();
  const jsons = new Set<string>();
  const encrypted = new Map<string, Encrypted>();
  const indexes: string[] = [];
  for (const f of entity.fields.values()) {
    if (f.encrypted) {
      const keyring = f.encrypted.keyring;
      // attachKeyring refuses to start without one; a schema compiled for reports only never reads values
      if (keyring) encrypted.set(f.name, { name: f.name, json: f.type === "json", spec: f.encrypted, keyring });
      if (f.encrypted.index) indexes.push(f.encrypted.index);
    } else if (f.type === "boolean") booleans.add(f.name);
    else if (f.type === "json") jsons.add(f.name);
  }
  const plainDecode = (row: Row) => {
    for (const k of booleans)
      if (k in row && row[k] !== null) row[k] = row[k] === true || row[k] === 1 || row[k] === 1n;
    for (const k of jsons)
      if (typeof row[k] === "string") {
        try {
          row[k] = JSON.parse(row[k] as string);
        } catch {
          // a value written outside Citadel: return it as stored
        }
      }
    return row;
  };
  const revealAll = (row: Row) => {
    for (const [k, field] of encrypted)
      if (k in row && row[k] !== null) row[k] = reveal(field, entity.name, row[k], row.id);
    for (const k of indexes) delete row[k];
    return row;
  };
  const plainEncode = (k: string, v: unknown) => {
    if (v === null || v === undefined) return null;
    if (booleans.has(k)) return Boolean(v);
    if (jsons.has(k)) return JSON.stringify(v);
    return v;
  };
  return {
    encode(values) {
      const out: Row = {};
      for (const [k, v] of Object.entries(values)) {
        const field = encrypted.get(k);
        if (!field) {
          out[k] = plainEncode(k, v);
          continue;
        }
        const plain = v === null || v === undefined ? null : field.json ? JSON.stringify(v) : String(v);
        out[k] = plain === null ? null : field.keyring.seal(plain, field.spec.context);
        const index = field.spec.index;
        if (index) out[index] = plain === null ? null : field.keyring.digest(plain, field.spec.context);
      }
      return out;
    },
    decode: (row) => revealAll(plainDecode(row)),
    image: plainDecode,
    stored(image) {
      const out: Row = {};
      for (const [k, v] of Object.entries(image)) out[k] = encrypted.has(k) ? (v ?? null) : plainEncode(k, v);
      return out;
    },
    open: (image) => revealAll({ ...image }),
    resealed(values) {
      const own = Object.keys(values).filter((k) => encrypted.has(k));
      return own.length === 0 ? undefined : this.encode(Object.fromEntries(own.map((k) => [k, values[k]])));
    },
  };
}
