/**
 * Fixed-window rate limiting of login, register and password changes (§3.4). The store is an interface so
 * that a shared store (the database, Redis) can replace the in-memory one when several servers serve one
 * app (§11.4); `rate-limit-store.ts` holds the database one.
 */
import { RateLimitedError } from "../errors.js";

export interface RateLimitHit {
  /** hits in the current window, this one included */
  count: number;
  /** when the current window ends, in ms since the epoch */
  resetAt: number;
}

export interface RateLimitStore {
  /** Count one hit on `key` in a window of `windowMs`, atomically (concurrent hits on several servers all count). */
  hit(key: string, windowMs: number): RateLimitHit | Promise<RateLimitHit>;
  /**
   * The open window of `key` without counting a hit, or undefined. Optional: without it no address counts as
   * known to an account, so the per-email limit applies to every address (see `LoginLimiter`).
   */
  peek?(key: string): RateLimitHit | undefined | Promise<RateLimitHit | undefined>;
  /** Forget `key`'s window. Optional: without it a correct password does not clear earlier failures. */
  reset?(key: string): void | Promise<void>;
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

  peek(key: string): RateLimitHit | undefined {
    const window = this.windows.get(key);
    return window && window.resetAt > this.clock() ? { ...window } : undefined;
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  private sweep(now: number) {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 10_000;
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }
}

export interface RateLimitRule {
  /** e.g. `register:email:a@b.c` */
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
    if (hit.count > rule.max) throw tooMany(hit, clock);
  }
}

const tooMany = (hit: RateLimitHit, clock: () => number) =>
  new RateLimitedError(Math.max(1, Math.ceil((hit.resetAt - clock()) / 1000)));

/** How long a correct password makes its address known to the account (see `LoginLimiter`). */
export const KNOWN_ADDRESS_MS = 30 * 86_400_000;

export interface LoginLimits {
  /** attempts from one address, whatever the email */
  perAddress: number;
  /** failed attempts on one email from one address: the limit that stops one guesser */
  perEmailAddress: number;
  /** attempts on one email from all addresses that have not logged into it lately: slows a distributed guesser */
  perEmail: number;
}

/**
 * The login limits (§3.4), shaped so that nobody can lock an account by knowing its email:
 *
 * 1. per address: every attempt counts, whatever the email (a guesser sweeping many accounts);
 * 2. per (email, address): the main failure limit; a correct password clears it, so it counts the failures
 *    of one address on one account, and an attacker exhausting it locks out only themselves;
 * 3. per email, from every address that has not logged into that account within `KNOWN_ADDRESS_MS`: caps
 *    the guesses a distributed attacker (many addresses) gets on one account per window. An address where
 *    the account's password was entered correctly is exempt, so the owner keeps logging in from where they
 *    usually do while an attack is under way; only a login from a new address waits for the window.
 *
 * Every rule is counted before the password is verified (one atomic hit each), so concurrent attempts on
 * several servers cannot slip past a limit, and a limited attempt does no hashing.
 */
export class LoginLimiter {
  constructor(
    private readonly store: RateLimitStore,
    private readonly limits: LoginLimits,
    private readonly windowMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Count an attempt on `email` from `client`; throws RateLimitedError when a limit is reached. */
  async attempt(email: string, client: string): Promise<void> {
    const { perAddress, perEmailAddress, perEmail } = this.limits;
    await enforceRateLimits(
      this.store,
      [
        { key: `login:address:${client}`, max: perAddress },
        { key: pairKey("failures", email, client), max: perEmailAddress },
      ],
      this.windowMs,
      this.clock,
    );
    if (await this.known(email, client)) return;
    await enforceRateLimits(this.store, [{ key: `login:email:${email}`, max: perEmail }], this.windowMs, this.clock);
  }

  /** After a correct password: the address's failures on the account are cleared and the address is known. */
  async succeeded(email: string, client: string): Promise<void> {
    await this.store.reset?.(pairKey("failures", email, client));
    if (this.store.peek) await this.store.hit(pairKey("known", email, client), KNOWN_ADDRESS_MS);
  }

  private async known(email: string, client: string): Promise<boolean> {
    return (await this.store.peek?.(pairKey("known", email, client))) !== undefined;
  }
}

/** An address holds no space, so the first space ends it whatever the email holds. */
const pairKey = (what: "failures" | "known", email: string, client: string) => `login:${what}:${client} ${email}`;
