/**
 * Duplicate keys in JSON text (§2.3). `JSON.parse` keeps the last of two equal keys, other parsers the first or
 * refuse: a gateway checking `{"title":"a","title":"b"}` in front of Citadel would check another filter or body
 * than the one Citadel runs. So a request naming a key twice in one object is 400, as a parameter given twice is.
 */
import { BadRequestError } from "../errors.js";

/** A string token (escapes included) or a structural character of JSON text. */
const TOKENS = /"(?:[^"\\]|\\.)*"|[{}[\]:]/g;

/**
 * The first key an object of `text` names twice, or undefined. `text` must be valid JSON (it has been parsed):
 * then every `"` outside a string opens one, and a string followed by `:` is a key.
 */
export function duplicateKey(text: string): string | undefined {
  // one object with one key, or none: nothing can repeat
  const colon = text.indexOf(":");
  if (colon === -1 || text.indexOf(":", colon + 1) === -1) return undefined;
  const open: (Set<string> | undefined)[] = [];
  let last = "";
  TOKENS.lastIndex = 0;
  for (let m = TOKENS.exec(text); m !== null; m = TOKENS.exec(text)) {
    const token = m[0];
    if (token === "{") open.push(new Set());
    else if (token === "[") open.push(undefined);
    else if (token === "}" || token === "]") open.pop();
    else if (token === ":") {
      const keys = open[open.length - 1]!;
      const key = last.includes("\\") ? (JSON.parse(last) as string) : last.slice(1, -1);
      if (keys.has(key)) return key;
      keys.add(key);
    } else last = token;
  }
  return undefined;
}

/** 400 when `text` (valid JSON) names a key twice in one object; `what` says where it was sent. */
export function requireUniqueKeys(text: string, what: string, path?: string): void {
  const key = duplicateKey(text);
  if (key !== undefined)
    throw new BadRequestError(`${what} names the key ${JSON.stringify(key)} twice in one object; name it once`, {
      ...(path ? { path } : {}),
    });
}
