/**
 * hash-wasm ships its WebAssembly as base64 inside its JavaScript; the edge adapter ships the same bytes as
 * .wasm files (adapters/edge/wasm) because workerd only runs WebAssembly imported as modules.
 * `CITADEL_UPDATE_WASM=1 npx vitest run test/edge/wasm.test.ts` rewrites them after a hash-wasm upgrade.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The binaries the argon2id of hash-wasm compiles: argon2 itself and blake2b (H0 and the final hash). */
export const NAMES = ["argon2", "blake2b"] as const;

export const WASM_DIR = new URL("../../adapters/edge/wasm/", import.meta.url);

/** The bytes of hash-wasm's binary `name`, as its installed version embeds them. */
export function hashWasmBinary(name: (typeof NAMES)[number]): Buffer {
  const main = createRequire(import.meta.url).resolve("hash-wasm");
  const source = readFileSync(join(dirname(main), "index.esm.js"), "utf8");
  const match = new RegExp(`var name(\\$\\w+) = "${name}";\\s*var data\\1 = "([A-Za-z0-9+/=]+)";`).exec(source);
  if (!match) throw new Error(`hash-wasm's index.esm.js no longer embeds "${name}" the way this test reads it`);
  return Buffer.from(match[2]!, "base64");
}

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
