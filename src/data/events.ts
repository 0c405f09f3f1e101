/**
 * The data engine's mutation events (§7, §8): every create, update and delete, with the row before and after,
 * given to in-transaction listeners (the audit trail, the outbox: they write in the mutation's transaction,
 * so no mutation commits without them) and, once committed, to after-commit listeners. Features subscribe
 * here; none reaches into the writes.
 */
import { type Db, dialectOf } from "../db/connection.js";
import type { Subject } from "../guard/access.js";
import type { Row } from "./codec.js";

export interface MutationEvent {
  action: "create" | "update" | "delete";
  entity: string;
  id: number;
  /** the whole stored row (hidden fields too), decoded; null for a create */
  before: Row | null;
  /** null for a delete */
  after: Row | null;
}

/** A read a caller made (§7.1 `audit.reads`: basefyio's query log). */
export interface ReadEvent {
  entity: string;
  /** the route's kind of read */
  kind: "list" | "count" | "exists" | "read" | "related";
  /** the row a read-one names */
  id?: number;
  /** the caller's where as it sent it (undefined: none) */
  where: unknown;
  /** rows returned (list, read, related) or counted */
  rows: number;
  durationMs: number;
}

export type ReadListener = (event: ReadEvent, actor: Subject) => Promise<void>;

export type InTransactionListener = (trx: Db, events: MutationEvent[], actor: Subject) => Promise<void>;
export type CommittedListener = (events: MutationEvent[], actor: Subject) => void;

export class DataEvents {
  private readonly inTransactionListeners: InTransactionListener[] = [];
  private readonly committedListeners: CommittedListener[] = [];
  private readonly readListeners: ReadListener[] = [];

  /** Whether anyone listens: writes read whole rows for their events only then. */
  get active(): boolean {
    return this.inTransactionListeners.length > 0 || this.committedListeners.length > 0;
  }

  onMutation(listener: InTransactionListener): void {
    this.inTransactionListeners.push(listener);
  }

  onCommit(listener: CommittedListener): void {
    this.committedListeners.push(listener);
  }

  onRead(listener: ReadListener): void {
    this.readListeners.push(listener);
  }

  /** Whether reads are heard: reads are timed and reported only then. */
  get hearsReads(): boolean {
    return this.readListeners.length > 0;
  }

  async read(event: ReadEvent, actor: Subject): Promise<void> {
    for (const listener of this.readListeners) await listener(event, actor);
  }

  /** Inside the mutation's transaction: a listener that throws rolls the mutation back. */
  async inTransaction(trx: Db, events: MutationEvent[], actor: Subject): Promise<void> {
    if (events.length === 0 || this.inTransactionListeners.length === 0) return;
    // the listeners take the locks every writer queues on: no lock may be taken after them (dialect)
    await dialectOf(trx).checkForeignKeysNow(trx);
    for (const listener of this.inTransactionListeners) await listener(trx, events, actor);
  }

  /** After the commit: listeners must not throw (the mutation is done), so a failure is theirs to report. */
  committed(events: MutationEvent[], actor: Subject): void {
    if (events.length === 0) return;
    for (const listener of this.committedListeners) listener(events, actor);
  }
}
