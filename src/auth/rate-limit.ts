/**
 * Fixed-window rate limiting of login and register (§3.4). The store is an interface so that a shared
 * store (Redis, the database) can replace the in-memory one when several processes serve one app.
 */
import { RateLimitedError } from "../errors.js";

export interface RateLimitHit {
  /** hits in the current window, this one included */
  count: number;
  /** when the current window ends, in ms since the epoch */
  resetAt: number;
}

export interface RateLimitStore {
  /** Count one hit on `key` in a window of `windowMs`. */
  hit(key: string, windowMs: number): RateLimitHit | Promise<RateLimitHit>;
}

/**
 * One process's counters. Expired windows are swept as hits arrive, and at most `maxKeys` windows are kept
 * (the oldest go first), so a flood of distinct keys cannot exhaust memory.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, RateLimitHit>();
  private nextSweep = 0;

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  hit(key: string, windowMs: number): RateLimitHit {
    const now = this.clock();
    this.sweep(now);
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string);
      window = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count++;
    return { ...window };
  }

  private sweep(now: number) {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 10_000;
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }
}

export interface RateLimitRule {
  /** e.g. `login:email:a@b.c` */
  key: string;
  max: number;
}

/**
 * Count a hit on each rule in order; the first one over its max throws RateLimitedError (429, Retry-After)
 * and later rules are not counted (an address over its limit cannot create new per-email keys).
 */
export async function enforceRateLimits(
  store: RateLimitStore,
  rules: RateLimitRule[],
  windowMs: number,
  clock: () => number = Date.now,
): Promise<void> {
  for (const rule of rules) {
    const hit = await store.hit(rule.key, windowMs);
    if (hit.count > rule.max) throw new RateLimitedError(Math.max(1, Math.ceil((hit.resetAt - clock()) / 1000)));
  }
}
