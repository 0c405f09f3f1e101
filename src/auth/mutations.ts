/**
 * Auth's writes to users (and to the account a registration creates) are data mutations like any other (§7.2,
 * §8.1): each runs in a transaction that gives its mutation events to the data engine's in-transaction
 * listeners (the audit trail, the outbox), so none commits without them, and to the after-commit listeners
 * once it has committed, as the engine's own writes do (data/writes.ts `emit`, `committing`).
 */
import type { AuditInput } from "../audit/entry.js";
import { type Reached, reach, reachedEvents } from "../data/cascade.js";
import type { Row } from "../data/codec.js";
import type { DataEvents, MutationEvent } from "../data/events.js";
import type { EntityModel } from "../data/models.js";
import { inTransaction } from "../data/writes.js";
import type { Db } from "../db/connection.js";
import type { Subject } from "../guard/access.js";
import type { UserRecord } from "./users.js";

/** The audit trail's recorder: in `trx`, the transaction of the write the entry goes with, else in one of its own. */
export type Recorder = (input: AuditInput, trx?: Db) => Promise<void>;

/** Trusted code (a seed, a script, the CLI): the writes' actor is nobody (no user, role, key or address). */
export const TRUSTED: Subject = { role: undefined, trusted: true };

/** The user as the actor of their own write, with the key and the request (id, client address) of `by`. */
export function userActor(user: UserRecord, by?: Subject): Subject {
  return {
    role: user.role ?? undefined,
    user: { id: user.id, email: user.email, role: user.role },
    ...(user.tenant === undefined ? {} : { tenant: user.tenant }),
    ...(by?.key ? { key: by.key } : {}),
    ...(by?.request ? { request: by.request } : {}),
  };
}

/** A row a write changed: `before` is its stored row ahead of the write (null for a create). */
export interface Changed {
  model: EntityModel;
  action: MutationEvent["action"];
  id: number;
  before: Row | null;
  /** a delete's: the rows its foreign keys delete or set to NULL (`fallout`) */
  reached?: Reached;
}

/** Give the changed rows' events to the in-transaction listeners, as `actor`; a listener that throws rolls back. */
export type Emit = (changed: Changed[], actor: Subject) => Promise<void>;

export class AuthWrites {
  constructor(
    private readonly db: Db,
    private readonly events: DataEvents,
  ) {}

  /** The whole stored row (hidden fields too), decoded: a write's `before`. Read only while anyone listens. */
  async stored(trx: Db, model: EntityModel, id: number): Promise<Row | null> {
    if (!this.events.active) return null;
    const row = await trx.selectFrom(model.entity.name).selectAll().where("id", "=", id).executeTakeFirst();
    return row ? model.codec.image(row) : null;
  }

  /** What deleting row `id` does to other rows through foreign keys, read before the DELETE while anyone listens. */
  async fallout(trx: Db, model: EntityModel, id: number): Promise<Reached | undefined> {
    return this.events.active ? reach(trx, model, [id]) : undefined;
  }

  /** Run `work` in one transaction; what it emits is heard inside it, and by the after-commit listeners once committed. */
  async run<T>(work: (trx: Db, emit: Emit) => Promise<T>): Promise<T> {
    let heard: [MutationEvent[], Subject][] = [];
    const result = await inTransaction(this.db, (trx) => {
      // a busy engine runs the whole transaction again: only the last run's events were committed
      heard = [];
      return work(trx, async (changed, actor) => {
        const events = await this.eventsOf(trx, changed);
        if (events.length === 0) return;
        await this.events.inTransaction(trx, events, actor);
        heard.push([events, actor]);
      });
    });
    for (const [events, actor] of heard) this.events.committed(events, actor);
    return result;
  }

  /**
   * The changed rows' events, their rows after the write read now (a row that was not there has none), each
   * delete's followed by those of the rows its foreign keys reached, as the engine's deletes emit them.
   */
  private async eventsOf(trx: Db, changed: Changed[]): Promise<MutationEvent[]> {
    if (!this.events.active) return [];
    const events: MutationEvent[] = [];
    for (const { model, action, id, before, reached } of changed) {
      const after = action === "delete" ? null : await this.stored(trx, model, id);
      if ((action !== "create" && before === null) || (action !== "delete" && after === null)) continue;
      events.push({ action, entity: model.entity.name, id, before, after });
      if (reached) events.push(...(await reachedEvents(trx, reached)));
    }
    return events;
  }
}
