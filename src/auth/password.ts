/**
 * Password hashing with argon2id (§3.1). Every login does exactly one verification, against the user's hash
 * or a dummy hash with the same parameters, so an unknown email costs the same as a wrong password (§3.4).
 */
import { randomBytes } from "node:crypto";
import { fieldError } from "../errors.js";
import type { Argon2, Argon2Options } from "../runtime.js";

export interface PasswordParams {
  min_length: number;
  max_length: number;
  argon2: { memory_cost: number; time_cost: number; parallelism: number };
}

/** How much hashing work was done; tests assert on these rather than on wall time. */
export interface HashCounters {
  hashes: number;
  verifications: number;
}

const ARGON2ID_PREFIX = "$argon2id$";
/**
 * The parameters of an argon2id PHC string of the current version (0x13), in either order in use: Node's
 * argon2 writes `m=…,p=…,t=…`, the reference implementation and hash-wasm `m=…,t=…,p=…`.
 */
const PHC_PARAMS = /^\$argon2id\$v=19\$((?:[mtp]=\d+,){2}[mtp]=\d+)\$/;

/** `{ m, t, p }` of an argon2id PHC string, or undefined when it is not one. */
function phcParams(hash: string): Record<string, number> | undefined {
  const list = PHC_PARAMS.exec(hash)?.[1];
  return list === undefined ? undefined : Object.fromEntries(list.split(",").map((p) => [p[0], Number(p.slice(2))]));
}

/** Length in code points, so that "é" counts as one character whatever its encoding. */
const lengthOf = (password: string) => Array.from(password).length;

export class PasswordHasher {
  private readonly options: Argon2Options;
  private dummy: Promise<string> | undefined;
  readonly counters: HashCounters = { hashes: 0, verifications: 0 };

  constructor(
    private readonly params: PasswordParams,
    private readonly argon2: Argon2,
  ) {
    const { memory_cost, time_cost, parallelism } = params.argon2;
    this.options = { memoryCost: memory_cost, timeCost: time_cost, parallelism };
  }

  /** Throws a 400 naming `field` when the password is not a string of an acceptable length. */
  check(password: unknown, field = "password"): string {
    if (typeof password !== "string") throw fieldError(field, `expected a string`);
    const length = lengthOf(password);
    if (length < this.params.min_length)
      throw fieldError(field, `must be at least ${this.params.min_length} characters`);
    if (length > this.params.max_length)
      throw fieldError(field, `must be at most ${this.params.max_length} characters`);
    return password;
  }

  /** True when the password may be hashed at all (login refuses oversized input without hashing it). */
  acceptable(password: string): boolean {
    return lengthOf(password) <= this.params.max_length;
  }

  async hash(password: string): Promise<string> {
    this.counters.hashes++;
    return this.argon2.hash(password, this.options);
  }

  /** A hash of a random password, made once with the configured parameters. */
  private dummyHash(): Promise<string> {
    this.dummy ??= this.argon2.hash(randomBytes(32).toString("base64url"), this.options);
    return this.dummy;
  }

  /** Compute the dummy hash now, so the first login does not pay for it. */
  async warmUp(): Promise<void> {
    await this.dummyHash();
  }

  /** One argon2 verification; a missing or foreign hash is verified against the dummy and fails. */
  async verify(hash: string | null | undefined, password: string): Promise<boolean> {
    const usable = typeof hash === "string" && hash.startsWith(ARGON2ID_PREFIX);
    const digest = usable ? hash : await this.dummyHash();
    this.counters.verifications++;
    let ok: boolean;
    try {
      ok = await this.argon2.verify(digest, password);
    } catch {
      ok = false;
    }
    return ok && usable;
  }

  /** True when a stored hash was made with other parameters than the configured ones. */
  needsRehash(hash: string): boolean {
    const { memoryCost, timeCost, parallelism } = this.options;
    const params = phcParams(hash);
    return params?.m !== memoryCost || params.t !== timeCost || params.p !== parallelism;
  }
}
