/** The SHA-256 of each binary in this folder, checked against hash-wasm's by test/edge/wasm.test.ts. */
export const WASM_SHA256 = {
  argon2: "7a25eff94eb7bc559acb7305d8352ed24470670a9ae653d79d86f92f8a395c3d",
  blake2b: "2aa7f33c4ece502997304672bc8defa348a7a30ef9a191e8648d317830e50afd",
} as const;
