/**
 * Field encryption at rest (§10): the keyring from `CITADEL_ENCRYPTION_KEYS` ("id:base64,id2:base64"), AES-256-GCM
 * through the platform's `node:crypto` (Node, Bun, workerd's nodejs_compat), and the keyed HMAC-SHA-256 blind
 * index of searchable fields. Synchronous, so the codec stays one synchronous step on every read and write.
 *
 * A stored value is `enc:v1:<key id>:<base64 of IV (12 bytes) | ciphertext | tag (16 bytes)>`; its additional
 * authenticated data is `enc:v1:<key id>:<entity>.<field>`, so a value copied into another column, another
 * entity, or relabelled with another key id fails its tag. Not the row id: a create does not know it before the
 * INSERT, and rotation would have to rewrite every row of a renamed entity.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { CitadelError, ConfigError } from "../errors.js";
import type { CompiledSchema } from "../schema/compiled.js";

export const KEYS_ENV = "CITADEL_ENCRYPTION_KEYS";
export const PREFIX = "enc:v1:";
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A stored value that cannot be opened: its tag fails (tampered, copied from another column), its key is not in
 * the keyring, or it is not ciphertext at all. Answered as 409 `conflict` naming the entity and field, never
 * with the value or a guess at it (README, "Encryption at rest").
 */
export class IntegrityError extends CitadelError {
  constructor(
    readonly entity: string,
    readonly field: string,
    readonly reason: string,
    readonly id?: number,
  ) {
    super(
      "conflict",
      409,
      `a stored value of ${entity}.${field}${id === undefined ? "" : ` (row ${id})`} cannot be decrypted: it fails its integrity check`,
      { entity, field, ...(id === undefined ? {} : { id }) },
    );
  }
}

interface Key {
  id: string;
  secret: Buffer;
  /** the blind index's HMAC key, derived from this key with HKDF */
  index: Buffer;
}

export interface Keyring {
  /** the id of the key that encrypts (the first listed) */
  readonly current: string;
  readonly ids: readonly string[];
  /** Encrypt `plain` for the column named by `context` (`entity.field`) under the current key. */
  seal(plain: string, context: string): string;
  /** Decrypt a stored value of `context`; throws a plain Error saying why (the codec names the field). */
  open(stored: string, context: string): string;
  /** `<key id>:<base64 HMAC>` of a value under the current key: what the blind index column stores. */
  digest(value: string, context: string): string;
  /** The same under every key, current first: what a search compares with while a rotation is under way. */
  digests(value: string, context: string): string[];
}

/** The id of the key a stored value names, or undefined when it is not a stored ciphertext. */
export function keyIdOf(stored: string): string | undefined {
  if (!stored.startsWith(PREFIX)) return undefined;
  const end = stored.indexOf(":", PREFIX.length);
  return end === -1 ? undefined : stored.slice(PREFIX.length, end);
}

/**
 * Parse "id:base64,id2:base64" (32-byte keys). Problems name the entry by position and id, never any key
 * material: the value of this variable must not end up in a log.
 */
export function parseKeyring(text: string, source = KEYS_ENV): Keyring {
  const entries = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) throw new ConfigError(source, 'no keys: expected "id:base64" entries separated by commas');
  const keys: Key[] = [];
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(":");
    const at = `entry ${i + 1}`;
    if (colon === -1) throw new ConfigError(source, `${at}: expected "id:base64" (no ":" found)`);
    const id = entry.slice(0, colon);
    const material = entry.slice(colon + 1);
    if (!KEY_ID.test(id))
      throw new ConfigError(
        source,
        `${at}: a key id is 1 to 32 letters, digits, "_" or "-" (it is stored in each value)`,
      );
    if (keys.some((k) => k.id === id)) throw new ConfigError(source, `${at}: the key id "${id}" is listed twice`);
    const secret = BASE64.test(material) ? Buffer.from(material, "base64") : undefined;
    if (!secret) throw new ConfigError(source, `${at} ("${id}"): the key is not base64`);
    if (secret.length !== 32)
      throw new ConfigError(source, `${at} ("${id}"): the key is ${secret.length} bytes; AES-256 needs 32`);
    const index = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "citadel blind index v1", 32));
    keys.push({ id, secret, index });
  });
  const byId = new Map(keys.map((k) => [k.id, k]));
  const current = keys[0]!;
  const aad = (id: string, context: string) => Buffer.from(`${PREFIX}${id}:${context}`, "utf8");
  const mac = (key: Key, value: string, context: string) =>
    `${key.id}:${createHmac("sha256", key.index).update(`${context}\u0000${value}`, "utf8").digest("base64")}`;
  return {
    current: current.id,
    ids: keys.map((k) => k.id),
    seal(plain, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", current.secret, iv);
      cipher.setAAD(aad(current.id, context));
      const body = Buffer.concat([iv, cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `${PREFIX}${current.id}:${body.toString("base64")}`;
    },
    open(stored, context) {
      const id = keyIdOf(stored);
      if (id === undefined) throw new Error("not an encrypted value");
      const key = byId.get(id);
      if (!key) throw new Error(`encrypted with key "${id}", which the keyring does not hold`);
      const base64 = stored.slice(PREFIX.length + id.length + 1);
      const body = BASE64.test(base64) ? Buffer.from(base64, "base64") : Buffer.alloc(0);
      if (body.length < IV_BYTES + TAG_BYTES) throw new Error("malformed ciphertext");
      const decipher = createDecipheriv("aes-256-gcm", key.secret, body.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(aad(id, context));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return plain.toString("utf8");
    },
    digest: (value, context) => mac(current, value, context),
    digests: (value, context) => keys.map((k) => mac(k, value, context)),
  };
}

/** A fresh key entry for `CITADEL_ENCRYPTION_KEYS`, e.g. `k2:…` (32 random bytes, base64). */
export const newKeyEntry = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;

/**
 * Give every encrypted field of the schema the keyring (at startup, before policies are compiled: a policy may
 * compare a searchable field with a literal). `keys` is `CITADEL_ENCRYPTION_KEYS`' value (or the app option's):
 * a malformed list is refused whether or not a field is encrypted, and an encrypted field without keys is a
 * startup error naming it.
 */
export function attachKeyring(
  schema: CompiledSchema,
  keys: string | undefined,
  source = KEYS_ENV,
): Keyring | undefined {
  const keyring = keys === undefined || keys.trim() === "" ? undefined : parseKeyring(keys, source);
  for (const entity of schema.entities.values())
    for (const field of entity.fields.values()) {
      if (!field.encrypted) continue;
      if (!keyring)
        throw new ConfigError(
          `config.data.entities.${entity.name}.fields.${field.name}.config.encrypted`,
          `${entity.name}.${field.name} is encrypted, but no encryption key is configured: set ${KEYS_ENV} ` +
            '("id:base64" entries of 32 random bytes each, the first one encrypting)',
        );
      field.encrypted.keyring = keyring;
    }
  return keyring;
}
