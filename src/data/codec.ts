/**
 * Converts between API values and storage: json is text; booleans are booleans, which the dialect binds as
 * the engine stores them (SQLite: 0/1) and which come back as the driver reads them.
 */
import type { CompiledEntity } from "../schema/compiled.js";

export type Row = Record<string, unknown>;

export interface EntityCodec {
  encode(values: Row): Row;
  decode(row: Row): Row;
}

/** Build the codec of one entity (at startup). */
export function buildCodec(entity: CompiledEntity): EntityCodec {
  const booleans = new Set<string>();
  const jsons = new Set<string>();
  for (const f of entity.fields.values()) {
    if (f.type === "boolean") booleans.add(f.name);
    if (f.type === "json") jsons.add(f.name);
  }
  return {
    encode(values) {
      const out: Row = {};
      for (const [k, v] of Object.entries(values)) {
        if (v === null || v === undefined) out[k] = null;
        else if (booleans.has(k)) out[k] = Boolean(v);
        else if (jsons.has(k)) out[k] = JSON.stringify(v);
        else out[k] = v;
      }
      return out;
    },
    decode(row) {
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
    },
  };
}
