/**
 * The little of Bun's `bun:sqlite` that the Bun adapter uses, so the project type-checks without bun-types
 * (its globals would clash with @types/node's). `Bun.serve` is typed where it is used (index.ts).
 */
declare module "bun:sqlite" {
  export interface Statement {
    readonly columnNames: string[];
    all(...params: unknown[]): unknown[];
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  }
  export class Database {
    constructor(filename: string, options?: { create?: boolean; readwrite?: boolean; readonly?: boolean });
    exec(sql: string): void;
    prepare(sql: string): Statement;
    close(): void;
  }
}
