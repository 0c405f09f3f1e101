/**
 * The edge adapter's copies of hash-wasm's WebAssembly (11.3): the same bytes as the installed hash-wasm, and
 * enough for argon2id where compiling WebAssembly from bytes is refused, as on workerd.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { wasmArgon2 } from "../../adapters/edge/argon2.js";
import { WASM_SHA256 } from "../../adapters/edge/wasm/hashes.js";
import { hashWasmBinary, NAMES, sha256, WASM_DIR } from "./wasm-binaries.js";

const OPTIONS = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

describe("the edge adapter's WebAssembly (11.3)", () => {
  it("adapters/edge/wasm holds hash-wasm's own argon2 and blake2b binaries, with their SHA-256", () => {
    for (const name of NAMES) {
      const file = new URL(`${name}.wasm`, WASM_DIR);
      if (process.env.CITADEL_UPDATE_WASM) writeFileSync(file, hashWasmBinary(name));
      const shipped = readFileSync(file);
      expect(sha256(shipped), `${name}.wasm differs from hash-wasm's; see test/edge/wasm-binaries.ts`).toBe(
        sha256(hashWasmBinary(name)),
      );
      expect(WASM_SHA256[name], `adapters/edge/wasm/hashes.ts for ${name}`).toBe(sha256(shipped));
    }
  });

  it("argon2id runs from modules compiled ahead of time when WebAssembly.compile is refused, as on workerd", async () => {
    const modules = new Map(
      NAMES.map((name) => [WASM_SHA256[name], new WebAssembly.Module(readFileSync(new URL(`${name}.wasm`, WASM_DIR)))]),
    );
    const compile = WebAssembly.compile;
    const refused: unknown[] = [];
    WebAssembly.compile = async (bytes) => {
      refused.push(bytes);
      throw new WebAssembly.CompileError("WebAssembly.compile(): Wasm code generation disallowed by embedder");
    };
    try {
      // this file is the first in its module registry to call hash-wasm, so its cache is empty
      const argon2 = wasmArgon2(modules);
      const hash = await argon2.hash("correct horse", OPTIONS);
      expect(hash).toMatch(/^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
      expect(await argon2.verify(hash, "correct horse")).toBe(true);
      expect(await argon2.verify(hash, "wrong horse")).toBe(false);
    } finally {
      WebAssembly.compile = compile;
    }
    expect(refused).toEqual([]);
  });
});
