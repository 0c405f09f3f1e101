/**
 * What monitoring counts (§7.5), as plain numbers per app: runtime-neutral, so every runtime counts, and the
 * Prometheus exporter (prometheus.ts, Node and Bun only) reads them at each scrape. The HTTP layer moves them
 * (src/http/monitor.ts); nothing here knows about HTTP.
 */

/** Why a request was refused with 401 or 403: the `reason` label of `citadel_denials_total`. */
export type DenialReason =
  | "access_denied"
  | "token_rejected"
  | "key_rejected"
  | "authentication_required"
  | "password_rejected";

export type DenialLabels = {
  reason: DenialReason;
  /** the role the caller acted as; "" for none (anonymous, a secret key without a role) */
  role: string;
  /** "" when the refusal names none */
  entity: string;
  permission: string;
};

/** A counter split by labels; the label names are fixed by the first use and by the exporter. */
export class LabelledCount<L extends Record<string, string>> {
  private readonly counts = new Map<string, { labels: L; value: number }>();

  inc(labels: L): void {
    const key = JSON.stringify(labels);
    const found = this.counts.get(key);
    if (found) found.value++;
    else this.counts.set(key, { labels, value: 1 });
  }

  entries(): Iterable<{ labels: L; value: number }> {
    return this.counts.values();
  }
}

/** Counts read from elsewhere at each scrape (they live in the module that counts them). */
export interface MonitorSources {
  /** secret keys refused because a browser sent them (§5.4): the API keys module counts them */
  secretKeyFromBrowser?: () => number;
  /** the change feed's streams (§8): the hub counts them */
  feed?: () => FeedCounts;
}

/** The change feed's streams: open now, events sent, and streams ended by reason. */
export interface FeedCounts {
  subscribers: number;
  events: number;
  ended: Record<string, number>;
}

/** One app's counters since it started. */
export class Monitor {
  readonly requests = new LabelledCount<{ route: string; status: string }>();
  readonly denials = new LabelledCount<DenialLabels>();
  loginFailures = 0;
  rateLimited = 0;
  escalationAttempts = 0;
  crossTenantAttempts = 0;
  auditEntries = 0;

  constructor(readonly sources: MonitorSources = {}) {}

  get secretKeyFromBrowser(): number {
    return this.sources.secretKeyFromBrowser?.() ?? 0;
  }

  get feed(): FeedCounts {
    return this.sources.feed?.() ?? { subscribers: 0, events: 0, ended: {} };
  }
}
