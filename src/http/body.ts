/**
 * Reads a JSON request body. An oversized body is 413 (checked while streaming); bytes that are not UTF-8, text
 * that is not JSON and strings or keys that are not well-formed Unicode are 400 (§2.3), so what is stored is
 * what was sent, never replacement characters.
 */
import type { Context } from "hono";
import { BadRequestError, CitadelError, PayloadTooLargeError } from "../errors.js";
import { requireUniqueKeys } from "../query/json-keys.js";

export interface ReadJsonOptions {
  /**
   * Refuse a non-empty body whose Content-Type is not `application/json` (parameters such as charset allowed).
   * Routes that set the session cookie without a credential need it (§3.7): a page elsewhere can post
   * text/plain, urlencoded or multipart without a CORS preflight, never application/json.
   */
  requireJsonType?: boolean;
}

/** `application/json`, case-insensitive, optionally followed by parameters (`; charset=utf-8`). */
const JSON_TYPE = /^\s*application\/json\s*(;|$)/i;

/** Bodies as read, by request: monitoring (monitor.ts) looks at what a refused write named (§7.5). */
const readBodies = new WeakMap<Request, unknown>();

/** The JSON body `readJson` read from this request; undefined when it read none. */
export const bodyRead = (c: Context): unknown => readBodies.get(c.req.raw);

export async function readJson(c: Context, maxBytes: number, options: ReadJsonOptions = {}): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > maxBytes) throw new PayloadTooLargeError(maxBytes);
  const body = c.req.raw.body;
  if (!body) return undefined;
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new PayloadTooLargeError(maxBytes);
    }
    text += utf8(() => decoder.decode(value, { stream: true }));
  }
  text += utf8(() => decoder.decode());
  if (size > 0 && options.requireJsonType && !JSON_TYPE.test(c.req.header("content-type") ?? ""))
    // 415 says what is wrong with the request; the code stays one of §2.1's
    throw new CitadelError(
      "bad_request",
      415,
      `expected Content-Type: application/json, got ${c.req.header("content-type") ?? "none"}`,
    );
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError("the request body is not valid JSON");
  }
  requireUniqueKeys(text, "the request body");
  readBodies.set(c.req.raw, value);
  if (mayHoldUnstorableText(text)) requireStorableText(value, "");
  return value;
}

/** A fatal decoder throws a TypeError on bytes that are not UTF-8; the client sent them. */
function utf8(decode: () => string): string {
  try {
    return decode();
  } catch {
    throw new BadRequestError("the request body is not valid UTF-8");
  }
}

/** `String.prototype.isWellFormed` (ES2024, in Node 20; our TypeScript lib is ES2023): false for a lone surrogate. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();
/** An unpaired surrogate: with the `u` flag a pair is one code point, so only a lone half matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;
/** `\uD800`–`\uDFFF` escaped in JSON text: the only way well-formed text parses into a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** A path longer than this is shortened in the middle (a body may nest thousands of levels). */
const MAX_PATH_CHARS = 200;

/** `\u0000` escaped in JSON text (raw control characters are not JSON). */
const NUL_ESCAPE = /\\u0000/;

/** Whether `text`, or what JSON.parse makes of it, may hold a lone surrogate or U+0000; false spares the walk. */
export function mayHoldUnstorableText(text: string): boolean {
  return (
    !isWellFormed(text) ||
    text.includes("\0") ||
    (text.includes("\\u") && (SURROGATE_ESCAPE.test(text) || NUL_ESCAPE.test(text)))
  );
}

/** One step of the walk, linked to its parent so that the path is built only for the culprit. */
interface Step {
  value: unknown;
  parent: Step | undefined;
  key: string | number | undefined;
}

/**
 * Throws 400 naming the path when a string or a key in `value` is not well-formed Unicode (§2.3): UTF-8 cannot
 * encode a lone surrogate, so the database would keep U+FFFD instead; or when it holds U+0000, which
 * PostgreSQL cannot store in text (refused on every engine, so that one request means the same everywhere). `prefix` names where `value` came from
 * (a query parameter), or is "" for a body, whose fields are named from its top level. Iterative: a body nested
 * thousands of levels deep cannot overflow the stack.
 */
export function requireStorableText(value: unknown, prefix: string): void {
  const stack: Step[] = [{ value, parent: undefined, key: undefined }];
  for (let step = stack.pop(); step; step = stack.pop()) {
    const v = step.value;
    if (typeof v === "string") {
      if (!isWellFormed(v)) throw illFormed(pathOf(step, prefix), "the string", v);
      if (v.includes("\0")) throw holdsNul(pathOf(step, prefix), "the string");
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], parent: step, key: i });
    } else if (typeof v === "object" && v !== null) {
      const keys = Object.keys(v);
      for (const key of keys)
        if (!isWellFormed(key)) throw illFormed(pathOf({ value: v, parent: step, key }, prefix), "the key", key);
        else if (key.includes("\0")) throw holdsNul(pathOf({ value: v, parent: step, key }, prefix), "the key");
      for (let i = keys.length - 1; i >= 0; i--)
        stack.push({ value: (v as Record<string, unknown>)[keys[i]!], parent: step, key: keys[i] });
    }
  }
}

function holdsNul(path: string, what: string): BadRequestError {
  return new BadRequestError(`${path}: ${what} holds U+0000 (NUL), which text in the database cannot hold`, { path });
}

function illFormed(path: string, what: string, text: string): BadRequestError {
  const unit = text.match(LONE_SURROGATE)![0].charCodeAt(0).toString(16).toUpperCase();
  return new BadRequestError(
    `${path}: ${what} is not well-formed Unicode: it holds a lone surrogate (U+${unit}), which UTF-8 cannot encode`,
    { path },
  );
}

/** `where.title.$in.1`; a key that is no plain name (or holds the lone surrogate) is quoted: `meta["\udc00"]`. */
function pathOf(step: Step, prefix: string): string {
  const keys: (string | number)[] = [];
  for (let s: Step | undefined = step; s?.parent; s = s.parent) keys.push(s.key!);
  let path = prefix;
  for (const key of keys.reverse()) {
    if (typeof key === "string" && !/^[\w$]+$/.test(key)) path += `[${JSON.stringify(key)}]`;
    else path += path === "" ? String(key) : `.${key}`;
  }
  if (path.length > MAX_PATH_CHARS) path = `${path.slice(0, MAX_PATH_CHARS / 2)}…${path.slice(-MAX_PATH_CHARS / 2)}`;
  // a body that is itself the string
  return path || "body";
}
