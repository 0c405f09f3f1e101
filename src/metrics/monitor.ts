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

/** Node, or Bun (which runs Node's modules); not workerd, whose nodejs_compat has no `cluster` or `perf_hooks`. */
export function runsNodeModules(): boolean {
  const { navigator, process } = globalThis as {
    navigator?: { userAgent?: string };
    process?: { release?: { name?: string } };
  };
  if (navigator?.userAgent === "Cloudflare-Workers") return false;
  return "Bun" in globalThis || process?.release?.name === "node";
}

/**
 * Checks waiting or running at once (`later`); past it one more is dropped, not queued: a flood of them
 * cannot grow without bound, and is plain enough in `citadel_requests_total` itself.
 */
const MAX_PENDING_CHECKS = 256;

/**
 * After the answer: Node and Bun run `setImmediate` right after the turn that wrote it, before anything the
 * client does in return is read (such as closing the app); elsewhere a timer.
 */
const nextTurn = (run: () => void): void => {
  const { setImmediate } = globalThis as { setImmediate?: (run: () => void) => unknown };
  if (setImmediate) setImmediate(run);
  else setTimeout(run, 0);
};

/** One app's counters since it started. */
export class Monitor {
  readonly requests = new LabelledCount<{ route: string; status: string }>();
  readonly denials = new LabelledCount<DenialLabels>();
  loginFailures = 0;
  rateLimited = 0;
  escalationAttempts = 0;
  crossTenantAttempts = 0;
  auditEntries = 0;
  private readonly pending = new Set<Promise<void>>();
  /** whether a scrape can read the counts here (index.ts): elsewhere (an edge worker) no check is worth running */
  private readonly scraped = runsNodeModules();

  constructor(readonly sources: MonitorSources = {}) {}

  /**
   * Run `check` once the current answer has gone: on the event loop's next turn, never awaited by the request,
   * so neither its time nor its outcome reaches the answer. A check that fails goes to `failed`. Only where the
   * counts are served (Node, Bun).
   */
  later(check: () => Promise<void>, failed: (error: unknown) => void): void {
    if (!this.scraped || this.pending.size >= MAX_PENDING_CHECKS) return;
    const done: Promise<void> = new Promise<void>((resolve) => nextTurn(resolve))
      .then(check)
      .catch((error: unknown) => {
        try {
          failed(error);
        } catch {
          // a logger that throws loses the line, never the scrape that waits for this check
        }
      })
      .finally(() => this.pending.delete(done));
    this.pending.add(done);
  }

  /** Once every check `later` took before now has finished: a scrape reads the counts after them. */
  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  get secretKeyFromBrowser(): number {
    return this.sources.secretKeyFromBrowser?.() ?? 0;
  }

  get feed(): FeedCounts {
    return this.sources.feed?.() ?? { subscribers: 0, events: 0, ended: {} };
  }
}
