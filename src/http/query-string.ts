/**
 * Query parameters, decoded as Hono decodes them, with one repair for bknd's client: it writes JSON into the
 * query string without encoding it (bknd 0.20 `encodeSearch`), so an `&` inside a value splits the
 * parameter — `where={"title":"Q&A"}` arrives as `where={"title":"Q` plus a stray `A"}`. When a JSON
 * parameter does not parse, the pieces after it are rejoined while its brackets or strings are still open,
 * and kept only if the result parses. `JSON.stringify` never writes `&` outside a string, so that is the
 * value that was sent. Each piece is scanned once: a hostile query cannot make this quadratic.
 */
import { tryDecodeURIComponent } from "hono/utils/url";
import { BadRequestError } from "../errors.js";
import { mayHoldUnstorableText, requireStorableText } from "./body.js";

export type QueryParams = Map<string, string[]>;

/** Parameters whose value may be JSON. */
const JSON_PARAMS = new Set(["where", "sort", "with"]);

const decode = (s: string) => tryDecodeURIComponent(s.includes("+") ? s.replace(/\+/g, " ") : s);

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Open brackets and strings across the pieces of one JSON text. */
class JsonScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** false once the text closes more brackets than it opened */
  feed(text: string): boolean {
    for (const ch of text) {
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === "\\") this.escaped = true;
        else if (ch === '"') this.inString = false;
      } else if (ch === '"') this.inString = true;
      else if (ch === "{" || ch === "[") this.depth++;
      else if ((ch === "}" || ch === "]") && --this.depth < 0) return false;
    }
    return true;
  }

  get closed(): boolean {
    return this.depth === 0 && !this.inString;
  }
}

/** The JSON text that `value` starts and later pieces finish, and the index of the last piece it took. */
function rejoin(value: string, pieces: string[], from: number): { value: string; last: number } | undefined {
  if (!/^\s*[[{]/.test(value) || parses(value)) return undefined;
  const scanner = new JsonScanner();
  if (!scanner.feed(value) || scanner.closed) return undefined;
  let joined = value;
  for (let i = from; i < pieces.length; i++) {
    const piece = `&${decode(pieces[i]!)}`;
    joined += piece;
    if (!scanner.feed(piece)) return undefined;
    if (scanner.closed) return parses(joined) ? { value: joined, last: i } : undefined;
  }
  return undefined;
}

/**
 * A value must be well-formed Unicode (§2.3). Percent-decoding never yields a lone surrogate, but a JSON escape
 * (`where={"title":"\ud800"}`) does once the value is parsed: any value that is JSON is checked as JSON, so
 * `where`, `sort`, `with` and whatever parameter takes JSON next are covered; other text is checked as it is.
 */
function requireStorableValue(name: string, value: string): void {
  if (!mayHoldUnstorableText(value)) return;
  let parsed: unknown = value;
  try {
    parsed = JSON.parse(value);
  } catch {
    // not JSON: the text itself is checked
  }
  requireStorableText(parsed, name);
}

/** The parameters Citadel's routes read. */
const READ_PARAMS = new Set(["where", "sort", "select", "with", "limit", "offset", "count", "last_event_id"]);

/**
 * A parameter's name as the routes read it: `name[]` (a list, as bknd's client writes `select[]`) and `name[0]`
 * are `name`. Other spellings a gateway's parser may read as a parameter Citadel reads — `where[title]`,
 * `[where]`, `where.title` — are 400: Citadel would run without the filter the gateway checked.
 */
function paramName(raw: string): string {
  const list = /^([^[\].]+)\[\d*\]$/.exec(raw);
  if (list) return list[1]!;
  if (!/[[\].]/.test(raw)) return raw;
  const named = /^\[?([^[\].]*)/.exec(raw)![1]!;
  if (raw.includes("[") || READ_PARAMS.has(named))
    throw new BadRequestError(`${raw}: parameters are not read as objects or paths; send ${named} as JSON`, {
      path: named,
    });
  // a dotted name no route reads (`utm.source`) stays as it is
  return raw;
}

/** Every query parameter of `url` (repeated keys keep every value, in order); 400 for ill-formed Unicode. */
export function queryParams(url: string): QueryParams {
  const params: QueryParams = new Map();
  const start = url.indexOf("?");
  if (start === -1) return params;
  const hash = url.indexOf("#", start);
  const pieces = url.slice(start + 1, hash === -1 ? undefined : hash).split("&");
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    const eq = piece.indexOf("=");
    const name = paramName(decode(eq === -1 ? piece : piece.slice(0, eq)));
    if (name === "") continue;
    let value = eq === -1 ? "" : decode(piece.slice(eq + 1));
    const rejoined = JSON_PARAMS.has(name) ? rejoin(value, pieces, i + 1) : undefined;
    if (rejoined) {
      value = rejoined.value;
      i = rejoined.last;
    }
    requireStorableValue(name, value);
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}

/**
 * A parameter that takes one value. Given twice it is 400: servers and proxies disagree on which of two
 * counts (the first here, the last elsewhere), and a filter checked in front of Citadel must be the one it runs.
 */
export function singleParam(params: QueryParams, key: string): string | undefined {
  const values = params.get(key);
  if (values && values.length > 1)
    throw new BadRequestError(`${key}: given ${values.length} times; give it once`, { path: key });
  return values?.[0];
}
