/**
 * API key material (§5.1, §5.2, §5.6): generating `pk_<env>_<lookup><secret>` keys from Web Crypto, their
 * SHA-256 digests, and the comparison of two digests. Web Crypto only (`getRandomValues`, `subtle.digest`),
 * so the same code runs on Node, Bun and workerd.
 */

export type KeyKind = "publishable" | "secret";

export const KIND_PREFIX: Record<KeyKind, string> = { publishable: "pk", secret: "sk" };

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** The public lookup part after `pk_<env>_`: 12 base62 characters (71 bits), stored in clear and listed. */
export const LOOKUP_CHARS = 12;
/** The secret part after the lookup part: 43 base62 characters carry 256 bits, the 32 random bytes of §5.1. */
export const SECRET_CHARS = 43;

/** `pk_live_<12 lookup chars><43 secret chars>`; env is lowercase letters and digits, so `_` only separates. */
const KEY = /^(pk|sk)_([a-z0-9]{1,16})_([0-9A-Za-z]{55})$/;

/** Uniform base62 characters: bytes ≥ 248 (= 4 × 62) are dropped, so `byte % 62` has no bias. */
function base62(length: number): string {
  let out = "";
  while (out.length < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
    for (const byte of bytes) {
      if (byte >= 248) continue;
      out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface NewKeyMaterial {
  /** the full key, shown once */
  key: string;
  /** `pk_<env>_<lookup>`: what the table is searched by and what lists show */
  prefix: string;
  /** hex SHA-256 of the full key: all that is stored of it */
  hash: string;
}

/** A new random key of `kind` for the environment label `env`. */
export async function newKey(kind: KeyKind, env: string): Promise<NewKeyMaterial> {
  const prefix = `${KIND_PREFIX[kind]}_${env}_${base62(LOOKUP_CHARS)}`;
  const key = `${prefix}${base62(SECRET_CHARS)}`;
  return { key, prefix, hash: toHex(await sha256(key)) };
}

/** A key's kind and lookup prefix, or undefined when the string is not shaped like a key at all. */
export function parseKey(key: string): { kind: KeyKind; prefix: string } | undefined {
  const match = KEY.exec(key);
  if (!match) return undefined;
  return {
    kind: match[1] === "pk" ? "publishable" : "secret",
    prefix: `${match[1]}_${match[2]}_${match[3]!.slice(0, LOOKUP_CHARS)}`,
  };
}

/** Whether a credential is meant as an API key rather than a JWT (§5.3): it starts with `pk_` or `sk_`. */
export const looksLikeKey = (credential: string) => credential.startsWith("pk_") || credential.startsWith("sk_");

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/**
 * Whether two SHA-256 digests are equal, looking at every byte whatever differs (§5.6). Node's
 * `crypto.timingSafeEqual` exists on neither workerd nor every Bun release, and Web Crypto has no equality, so
 * this is the usual XOR-accumulate loop: no early exit and no branch on the bytes. Both inputs are digests of
 * the same fixed length, so the length check reveals nothing; and since the caller only ever controls the
 * preimage of one side, even a leak would say nothing useful about the stored digest.
 */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
