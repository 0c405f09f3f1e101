/** Citadel's public API. */
export { type AppOptions, type CitadelApp, type CreateAppInput, createApp, type SeedContext } from "./app.js";
export {
  type AuthModule,
  MemoryRateLimitStore,
  type NewUser,
  type RateLimitHit,
  type RateLimitStore,
  type Session,
} from "./auth/index.js";
export type { CitadelConfig } from "./config/schema.js";
export type { ConnectionConfig, ConnectionTarget, Connector } from "./db/connection.js";
export * from "./errors.js";
export type { Subject } from "./guard/access.js";
export { type AccessChange, type AccessDiff, diffReports } from "./guard/diff.js";
export type { ExplainQuery, Explanation } from "./guard/explain.js";
export type { AccessReport, Action, Cell, FieldAccess, FieldGrant, Warning, WarningKind } from "./guard/report.js";
export type { Filter } from "./query/ast.js";
export type { Argon2, Argon2Options, Runtime } from "./runtime.js";
export { Entity, em, entity, index, relation, Schema, type SchemaJSON } from "./schema/entity.js";
export { boolean, date, datetime, enumm, Field, json, number, text } from "./schema/fields.js";
export { DestructiveSyncError } from "./schema/sync.js";

import type { CreateAppInput } from "./app.js";

/** What every adapter's `serve()` accepts. */
export interface ServeOptions extends CreateAppInput {
  /** Defaults to `PORT` or 7654. */
  port?: number;
  hostname?: string;
  /** Do not print the listening address. */
  quiet?: boolean;
}
