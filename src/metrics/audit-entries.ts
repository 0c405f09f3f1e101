/**
 * `citadel_audit_entries_total` (§7.5): the entries this app writes to the audit trail, counted where they are
 * written without reaching into the trail: the mutations' entries once their transaction commits (one per
 * row, plus `auth.role_change` for a user whose role changed, as the trail records them), each read it
 * records under `audit.reads`, and every entry recorded through the returned trail (auth events, key
 * management, denials), once written.
 */
import type { AuditTrail } from "../audit/index.js";
import type { DataEvents, MutationEvent } from "../data/events.js";
import type { Monitor } from "./monitor.js";

/** The entries the trail writes for one committed mutation event. */
const entriesOf = (event: MutationEvent): number =>
  event.entity === "users" && event.action === "update" && (event.before?.role ?? null) !== (event.after?.role ?? null)
    ? 2
    : 1;

/** Count the trail's entries into `monitor`; returns the trail to record through so that those count too. */
export function countAuditEntries(trail: AuditTrail, events: DataEvents, monitor: Monitor, reads: boolean): AuditTrail {
  events.onCommit((committed) => {
    for (const event of committed) monitor.auditEntries += entriesOf(event);
  });
  // listeners run in order: this one only after the trail's own has recorded the read
  if (reads) events.onRead(async () => void monitor.auditEntries++);
  const counted: AuditTrail = Object.create(trail);
  counted.record = async (...inputs) => {
    await trail.record(...inputs);
    monitor.auditEntries += inputs.length;
  };
  return counted;
}
