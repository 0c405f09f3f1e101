/**
 * argon2id through WebAssembly (hash-wasm), producing and verifying the same PHC strings as Node's native
 * `argon2` (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, 16-byte salt, 32-byte hash), so one users table serves
 * both runtimes.
 *
 * workerd (and Cloudflare Workers) refuse to compile WebAssembly from bytes at run time, which is how
 * hash-wasm loads its code; they accept modules imported at deploy time. So the worker imports hash-wasm's
 * own binaries as modules (wasm/*.wasm, checked against hash-wasm by test/edge) and hands them over once: while
 * one tiny hash primes hash-wasm's module cache, `WebAssembly.compile` answers with the imported module whose
 * bytes match. Runtimes that compile from bytes (Node, Deno, Bun) need no modules.
 */
import { argon2id, argon2Verify } from "hash-wasm";
import type { Argon2 } from "../../src/runtime.js";

/** hash-wasm's binaries compiled ahead of time, by the SHA-256 of their bytes (wasm/index.ts). */
export type WasmModules = ReadonlyMap<string, WebAssembly.Module>;

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/**
 * hash-wasm writes the parameters as the reference implementation does (`m=…,t=…,p=…`), Node's argon2 as
 * `m=…,p=…,t=…`. Both read either; writing Node's order keeps one format in a table both runtimes write.
 */
const HASH_WASM_PARAMS = /^(\$argon2id\$v=19\$)m=(\d+),t=(\d+),p=(\d+)\$/;
const NATIVE_PARAMS = "$1m=$2,p=$4,t=$3$$";

async function sha256(bytes: BufferSource): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fill hash-wasm's module cache (argon2 and blake2b) from `modules` instead of compiling bytes. */
async function prime(modules: WasmModules): Promise<void> {
  const compile = WebAssembly.compile;
  WebAssembly.compile = async (bytes: BufferSource) => {
    const module = modules.get(await sha256(bytes));
    if (module) return module;
    // on workerd this throws "Wasm code generation disallowed by embedder": say what to do instead
    return compile(bytes).catch((error: unknown) => {
      throw new Error(
        `hash-wasm's WebAssembly is not among adapters/edge/wasm/*.wasm (hash-wasm upgraded?); ${String(error)}`,
      );
    });
  };
  try {
    const salt = new Uint8Array(SALT_BYTES);
    await argon2id({ password: "prime", salt, iterations: 1, parallelism: 1, memorySize: 8, hashLength: 4 });
  } finally {
    WebAssembly.compile = compile;
  }
}

/** argon2id in WebAssembly; pass `modules` where the runtime cannot compile WebAssembly from bytes (workerd). */
export function wasmArgon2(modules?: WasmModules): Argon2 {
  let primed: Promise<void> | undefined;
  const ready = () => {
    if (!modules) return Promise.resolve();
    primed ??= prime(modules).catch((error: unknown) => {
      primed = undefined; // the next request tries again
      throw error;
    });
    return primed;
  };
  return {
    async hash(password, { memoryCost, timeCost, parallelism }) {
      await ready();
      const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
      const encoded = await argon2id({
        password,
        salt,
        memorySize: memoryCost,
        iterations: timeCost,
        parallelism,
        hashLength: HASH_BYTES,
        outputType: "encoded",
      });
      return encoded.replace(HASH_WASM_PARAMS, NATIVE_PARAMS);
    },
    async verify(hash, password) {
      await ready();
      return argon2Verify({ password, hash });
    },
  };
}
