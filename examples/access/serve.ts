/**
 * Run one of the docs' examples: `npx tsx examples/access/serve.ts step6-public-and-owner` (or `saas`, `blog`).
 * Each runs on its own database file (`<name>.db`) so switching examples never meets another schema.
 * Set CITADEL_JWT_SECRET (≥ 32 bytes) or CITADEL_DEV=1.
 */
import { readdirSync } from "node:fs";
import type { CreateAppInput } from "citadel";
import { serve } from "citadel/adapter/node";

const here = new URL(".", import.meta.url);
const names = readdirSync(here)
  .filter((f) => /^(step\d|saas|blog)/.test(f))
  .map((f) => f.replace(/\.ts$/, ""));
const name = process.argv[2];
if (!name || !names.includes(name)) {
  console.error(`usage: npx tsx examples/access/serve.ts <${names.join("|")}>`);
  process.exit(1);
}
const example = (await import(new URL(`./${name}.ts`, here).href)).default as CreateAppInput;
serve({ ...example, connection: { url: `file:${name}.db` } });
