/**
 * The data engine's mutation events (§7, §8): every create, update and delete, with the row before and after,
 * given to in-transaction listeners (the audit trail, the outbox: they write in the mutation's transaction,
 * so no mutation commits without them) and, once committed, to after-commit listeners. Features subscribe
 * here; none reaches into the writes.
 */
import type { Db } from "../db/connection.js";
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

export type InTransactionListener = (trx: Db, events: MutationEvent[], actor: Subject) => Promise<void>;
export type CommittedListener = (events: MutationEvent[], actor: Subject) => void;

export class DataEvents {
  private readonly inTransactionListeners: InTransactionListener[] = [];
  private readonly committedListeners: CommittedListener[] = [];

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

  /** Inside the mutation's transaction: a listener that throws rolls the mutation back. */
  async inTransaction(trx: Db, events: MutationEvent[], actor: Subject): Promise<void> {
    if (events.length === 0) return;
    for (const listener of this.inTransactionListeners) await listener(trx, events, actor);
  }

  /** After the commit: listeners must not throw (the mutation is done), so a failure is theirs to report. */
  committed(events: MutationEvent[], actor: Subject): void {
    if (events.length === 0) return;
    for (const listener of this.committedListeners) listener(events, actor);
  }
}
