/**
 * The Prometheus exporter (§7.5): prom-client's text format and default runtime metrics, on a registry of the
 * app's own (several apps share a process in tests and in multi-app servers: never the global registry).
 * prom-client loads Node's modules (cluster, perf_hooks, http…), so this file is imported only on Node and Bun
 * (index.ts) and nothing else in src/ imports it.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Exporter } from "./index.js";
import type { LabelledCount, Monitor } from "./monitor.js";

/** A counter whose value is read from the monitor at each scrape. */
function total(register: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [register],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter split by labels, its values read from the monitor at each scrape. */
function labelled<L extends Record<string, string>>(
  register: Registry,
  name: string,
  help: string,
  labelNames: (keyof L & string)[],
  counts: LabelledCount<L>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [register],
    collect() {
      this.reset();
      for (const { labels, value } of counts.entries()) this.inc(labels, value);
    },
  });
}

/** A registry that serves `monitor`'s counters and the runtime's default metrics. */
export function prometheusExporter(monitor: Monitor): Exporter {
  const register = new Registry();
  collectDefaultMetrics({ register });
  labelled(
    register,
    "citadel_requests_total",
    "HTTP requests answered, by matched route and status",
    ["route", "status"],
    monitor.requests,
  );
  labelled(
    register,
    "citadel_denials_total",
    "requests refused with 401 or 403 (failed logins apart), by reason, role, entity and permission",
    ["reason", "role", "entity", "permission"],
    monitor.denials,
  );
  total(register, "citadel_login_failures_total", "password logins refused (401)", () => monitor.loginFailures);
  total(register, "citadel_rate_limited_total", "requests answered 429", () => monitor.rateLimited);
  total(
    register,
    "citadel_escalation_attempts_total",
    "refused writes naming a privileged field: a user's role, the tenant scope column, another user as owner",
    () => monitor.escalationAttempts,
  );
  total(
    register,
    "citadel_cross_tenant_attempts_total",
    "requests of a caller bound to an account (or to none) whose path, where or body names another account",
    () => monitor.crossTenantAttempts,
  );
  total(
    register,
    "citadel_secret_key_browser_total",
    "secret API keys refused because a browser sent them",
    () => monitor.secretKeyFromBrowser,
  );
  total(register, "citadel_audit_entries_total", "audit trail entries this app recorded", () => monitor.auditEntries);
  new Gauge({
    name: "citadel_feed_subscribers",
    help: "change-feed streams open on this server",
    registers: [register],
    collect() {
      this.set(monitor.feed.subscribers);
    },
  });
  total(register, "citadel_feed_events_total", "change-feed events sent to subscribers", () => monitor.feed.events);
  new Counter({
    name: "citadel_feed_disconnects_total",
    help: "change-feed streams the server ended, by reason (expired, revoked, slow, failed, closed)",
    labelNames: ["reason"],
    registers: [register],
    collect() {
      this.reset();
      for (const [reason, value] of Object.entries(monitor.feed.ended)) this.inc({ reason }, value);
    },
  });
  return {
    contentType: register.contentType,
    // the counts as of this scrape's request: checks still running for earlier answers are waited for
    metrics: async () => {
      await monitor.settled();
      return register.metrics();
    },
  };
}
