/**
 * argon2id through WebAssembly writes and reads the PHC strings of Node's native argon2 (11.3), so a users table
 * serves Node and edge servers alike: the same format, each verifies the other's hashes, and neither asks for a
 * rehash of a hash the other made with the configured parameters.
 */
import { describe, expect, it } from "vitest";
import { wasmArgon2 } from "../../adapters/edge/argon2.js";
import { nodeRuntime } from "../../adapters/node/runtime.js";
import { PasswordHasher } from "../../src/auth/password.js";
import type { Argon2Options } from "../../src/runtime.js";

const native = nodeRuntime.argon2;
const wasm = wasmArgon2();

/** Citadel's defaults (config.auth.password.argon2), a cheap set, and several lanes. */
const PARAMETERS: Argon2Options[] = [
  { memoryCost: 19_456, timeCost: 2, parallelism: 1 },
  { memoryCost: 1024, timeCost: 1, parallelism: 1 },
  { memoryCost: 4096, timeCost: 3, parallelism: 4 },
];
const PASSWORD = "pass1234 é 🔑";
/** Node's argon2 format: `$argon2id$v=19$m=…,p=…,t=…$`, a 16-byte salt and a 32-byte hash in unpadded base64. */
const phc = ({ memoryCost, timeCost, parallelism }: Argon2Options) =>
  new RegExp(
    `^\\$argon2id\\$v=19\\$m=${memoryCost},p=${parallelism},t=${timeCost}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`,
  );
const hasherFor = ({ memoryCost, timeCost, parallelism }: Argon2Options) =>
  new PasswordHasher(
    { min_length: 8, max_length: 256, argon2: { memory_cost: memoryCost, time_cost: timeCost, parallelism } },
    native,
  );

describe("argon2id: native (Node) and WebAssembly (edge) write one PHC format (11.3)", () => {
  for (const options of PARAMETERS) {
    const label = `m=${options.memoryCost},t=${options.timeCost},p=${options.parallelism}`;

    it(`a native hash verifies under WebAssembly (${label})`, async () => {
      const hash = await native.hash(PASSWORD, options);
      expect(hash).toMatch(phc(options));
      expect(await wasm.verify(hash, PASSWORD)).toBe(true);
      expect(await wasm.verify(hash, `${PASSWORD}!`)).toBe(false);
    });

    it(`a WebAssembly hash has the native format and verifies natively (${label})`, async () => {
      const hash = await wasm.hash(PASSWORD, options);
      expect(hash).toMatch(phc(options));
      expect(await native.verify(hash, PASSWORD)).toBe(true);
      expect(await native.verify(hash, `${PASSWORD}!`)).toBe(false);
    });
  }

  it("neither runtime's hash with the configured parameters needs a rehash; other parameters do (3.1)", async () => {
    const [configured, other] = [PARAMETERS[1]!, PARAMETERS[2]!];
    const hasher = hasherFor(configured);
    for (const argon2 of [native, wasm]) {
      expect(hasher.needsRehash(await argon2.hash(PASSWORD, configured))).toBe(false);
      expect(hasher.needsRehash(await argon2.hash(PASSWORD, other))).toBe(true);
    }
    // the reference implementation's order (m, t, p) is read too
    expect(hasher.needsRehash("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA")).toBe(false);
    expect(hasher.needsRehash("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA")).toBe(true);
  });

  it("each WebAssembly hash has its own random salt", async () => {
    const [a, b] = await Promise.all([wasm.hash(PASSWORD, PARAMETERS[1]!), wasm.hash(PASSWORD, PARAMETERS[1]!)]);
    expect(a).not.toBe(b);
  });
});
