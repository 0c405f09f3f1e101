/**
 * hash-wasm's argon2 and blake2b binaries as modules compiled at deploy time (workerd, Cloudflare Workers and
 * wrangler turn an imported .wasm file into a `WebAssembly.Module`), keyed by the SHA-256 of their bytes.
 */
import type { WasmModules } from "../argon2.js";
import argon2 from "./argon2.wasm";
import blake2b from "./blake2b.wasm";
import { WASM_SHA256 } from "./hashes.js";

export const hashWasmModules: WasmModules = new Map([
  [WASM_SHA256.argon2, argon2],
  [WASM_SHA256.blake2b, blake2b],
]);
