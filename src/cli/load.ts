/**
 * Loads an app's config module for the CLI: its default export (or an export named `app`) is the
 * `createApp` input `{ connection, config, options }`, or a function returning it. A TypeScript file is
 * loaded through tsx when the CLI does not already run under it.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { CreateAppInput } from "../app.js";

const TYPESCRIPT = /\.[cm]?tsx?$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** Import through tsx's own loader, scoped to this import (Node caches the failed plain import of the URL). */
async function importTypeScript(url: string): Promise<Record<string, unknown>> {
  let tsImport: typeof import("tsx/esm/api")["tsImport"];
  try {
    ({ tsImport } = await import("tsx/esm/api"));
  } catch {
    throw new Error("a TypeScript config needs tsx: `npm install --save-dev tsx` (or run the CLI under `npx tsx`)");
  }
  return tsImport(url, import.meta.url);
}

async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  try {
    return await import(url);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (TYPESCRIPT.test(file) && code === "ERR_UNKNOWN_FILE_EXTENSION") return importTypeScript(url);
    throw error;
  }
}

/** Import `file` (relative to the working directory) and return the app input it exports. */
export async function loadAppInput(file: string): Promise<CreateAppInput> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`--config: no such file: ${path}`);
  const mod = await importModule(path);
  let input = mod.default ?? mod.app;
  // a CommonJS module (a .ts file outside a "type": "module" package) arrives wrapped once more
  if (isObject(input) && isObject(input.default) && !("config" in input)) input = input.default;
  if (typeof input === "function") input = await input();
  if (typeof input !== "object" || input === null)
    throw new Error(
      `--config: ${file} must export the app as its default export (or as \`app\`): { connection, config, options }`,
    );
  return input as CreateAppInput;
}

/** A data file for a command: JSON, or a module whose default export is the data (relative to the working directory). */
export async function loadData(file: string, option: string): Promise<unknown> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`${option}: no such file: ${path}`);
  if (path.endsWith(".json")) {
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new Error(`${option}: ${file} is not valid JSON (${(error as Error).message})`);
    }
  }
  const mod = await importModule(path);
  return mod.default;
}
