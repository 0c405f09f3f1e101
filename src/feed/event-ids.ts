/**
 * The ids of change-feed events (§8.2). The outbox numbers every mutation of every tenant in one sequence, so
 * its numbers would tell a subscriber how many writes happened between two of its events, other tenants'
 * included. With auth on, an id is the sequence number sealed with AES-256-GCM (WebCrypto, a key derived
 * from the JWT secret with HKDF, a fresh IV each): opaque, and a forged or altered one does not open. Without
 * auth every caller sees every row, and the number is the id.
 */

export interface EventIds {
  seal(seq: number): Promise<string>;
  /** the sequence number, or undefined for an id this server did not seal (another secret, altered, forged) */
  open(id: string): Promise<number | undefined>;
  /** whether `id` has the shape of an id at all (else the request is a 400) */
  wellFormed(id: string): boolean;
}

const IV_BYTES = 12;
/** IV, the 8-byte number, the 16-byte tag: 36 bytes, 48 base64url characters */
const SEALED = /^[A-Za-z0-9_-]{48}$/;
const NUMBER = /^\d{1,15}$/;

const toBase64Url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const fromBase64Url = (text: string) =>
  Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** Plain sequence numbers (no auth: nothing to hide from anyone). */
export const PLAIN_IDS: EventIds = {
  seal: async (seq) => String(seq),
  open: async (id) => Number(id),
  wellFormed: (id) => NUMBER.test(id),
};

/** Sealed ids under a key derived from `secret`: every server with the same secret opens the others' ids. */
export async function sealedIds(secret: Uint8Array): Promise<EventIds> {
  const base = await crypto.subtle.importKey("raw", new Uint8Array(secret), "HKDF", false, ["deriveKey"]);
  const key = await crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: new TextEncoder().encode("citadel feed event ids"),
    },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
  return {
    async seal(seq) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const plain = new Uint8Array(8);
      new DataView(plain.buffer).setBigUint64(0, BigInt(seq));
      const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
      const out = new Uint8Array(IV_BYTES + sealed.length);
      out.set(iv);
      out.set(sealed, IV_BYTES);
      return toBase64Url(out);
    },
    async open(id) {
      if (!SEALED.test(id)) return undefined;
      const bytes = fromBase64Url(id);
      try {
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES) },
          key,
          bytes.subarray(IV_BYTES),
        );
        return Number(new DataView(plain).getBigUint64(0));
      } catch {
        return undefined;
      }
    },
    wellFormed: (id) => SEALED.test(id),
  };
}
