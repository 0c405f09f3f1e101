/**
 * The encryption tests' app (§10): patients with a searchable encrypted `ssn`, an encrypted `notes` text and
 * an encrypted json `chart`, and their visits (the same schema as the CLI's app.config.ts); keys made fresh
 * per run. Not a test file itself.
 */
import { randomBytes } from "node:crypto";
import type { CitadelConfig } from "citadel";
import { schema } from "./app.config.js";

export { schema };

/** A fresh keyring entry `id:base64` of 32 random bytes. */
export const newKey = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;

export function encryptionConfig(overrides: Partial<CitadelConfig> = {}): CitadelConfig {
  return { data: schema.toJSON(), audit: { enabled: true }, feed: { poll_ms: 50 }, ...overrides };
}

/** The stored format: `enc:v1:<key id>:<base64 IV | ciphertext | tag>`. */
export const STORED = /^enc:v1:([A-Za-z0-9_-]+):[A-Za-z0-9+/]+={0,2}$/;
