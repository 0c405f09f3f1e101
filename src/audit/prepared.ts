/**
 * Statements compiled once and run many times (the audit trail's appends, store.ts): Kysely builds and
 * compiles a query anew at every call, which costs about as much as SQLite takes to run a small one.
 */
import { type Compilable, CompiledQuery, type QueryResult } from "kysely";
import { type Db, dialectOf } from "../db/connection.js";
import type { Dialect } from "../dialect/index.js";

/** A compiled parameter's position, and the index of the value that goes there. */
type Slot = [at: number, value: number];

/**
 * A statement built and compiled once per dialect, then run with other values. It is built with stand-ins
 * for its values (`value(i)`); `run` binds `values[i]` where the compiler bound each stand-in.
 */
export class Prepared {
  private readonly compiled = new Map<Dialect, { sql: string; parameters: readonly unknown[]; slots: Slot[] }>();
  constructor(private readonly build: (db: Db, value: (i: number) => unknown) => Compilable) {}

  private compile(db: Db, dialect: Dialect) {
    const standIns = new Map<string, number>();
    const value = (i: number) => {
      const standIn = `\u0000citadel stand-in ${i}`;
      standIns.set(standIn, i);
      return standIn;
    };
    const { sql: text, parameters } = this.build(db, value).compile();
    const slots: Slot[] = [];
    parameters.forEach((p, at) => {
      const i = typeof p === "string" ? standIns.get(p) : undefined;
      if (i !== undefined) slots.push([at, i]);
    });
    if (new Set(slots.map(([, i]) => i)).size !== standIns.size)
      throw new Error(`a stand-in value was not bound as a parameter: ${text}`);
    const compiled = { sql: text, parameters, slots };
    this.compiled.set(dialect, compiled);
    return compiled;
  }

  run<R>(trx: Db, values: readonly unknown[]): Promise<QueryResult<R>> {
    const dialect = dialectOf(trx);
    const { sql, parameters, slots } = this.compiled.get(dialect) ?? this.compile(trx, dialect);
    const bound = [...parameters];
    for (const [at, i] of slots) bound[at] = values[i];
    return trx.executeQuery<R>(CompiledQuery.raw(sql, bound));
  }
}
