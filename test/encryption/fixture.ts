/**
 * The encryption tests' app (§10): patients with a searchable encrypted `ssn`, an encrypted `notes` text and
 * an encrypted json `chart`, and their visits; keys made fresh per run. Not a test file itself.
 */
import { randomBytes } from "node:crypto";
import { type CitadelConfig, em, entity, json, relation, text } from "citadel";

/** A fresh keyring entry `id:base64` of 32 random bytes. */
export const newKey = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;

export const schema = em(
  {
    patients: entity("patients", {
      name: text().required(),
      ssn: text().encrypted({ searchable: true }),
      notes: text().encrypted(),
      chart: json().encrypted(),
    }),
    visits: entity("visits", { reason: text().encrypted(), room: text() }),
  },
  ({ patients, visits }) => [relation(visits, "patient").manyToOne(patients)],
);

export function encryptionConfig(overrides: Partial<CitadelConfig> = {}): CitadelConfig {
  return { data: schema.toJSON(), audit: { enabled: true }, feed: { poll_ms: 50 }, ...overrides };
}

/** The stored format: `enc:v1:<key id>:<base64 IV | ciphertext | tag>`. */
export const STORED = /^enc:v1:([A-Za-z0-9_-]+):[A-Za-z0-9+/]+={0,2}$/;
