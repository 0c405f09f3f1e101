/**
 * The data engine: the connection and the entity models. A caller reads and writes only through
 * `engine.as(access, limits)` (scoped.ts), which asks the guard for every scope and ANDs it into the SQL,
 * and checks writes against it inside their transaction.
 */
import type { Db } from "../db/connection.js";
import { NotFoundError } from "../errors.js";
import type { Access } from "../guard/access.js";
import type { QueryLimits } from "../query/options.js";
import { DataEvents } from "./events.js";
import type { EntityModel, Models } from "./models.js";
import { ScopedData } from "./scoped.js";

export type { ListResult } from "./reads.js";
export type { Input, ScopedData } from "./scoped.js";

export class DataEngine {
  constructor(
    readonly db: Db,
    readonly models: Models,
    /** every mutation, for the audit trail and the change feed (events.ts); auth's writes to users emit here too */
    readonly events: DataEvents = new DataEvents(),
  ) {}

  model(entity: string): EntityModel {
    const model = this.models.get(entity);
    if (!model) throw new NotFoundError(`unknown entity "${entity}"`);
    return model;
  }

  /** Every read and write of one caller, under the guard's answers for it (§4.5). */
  as(access: Access, limits: QueryLimits): ScopedData {
    return new ScopedData(this, access, limits);
  }
}
