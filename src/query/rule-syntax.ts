/**
 * The syntax of rule expressions (§9.1): text → a small tree with positions, nothing about entities or
 * callers. A hand-written recursive-descent parser rather than a generator: the grammar is a dozen
 * productions, and writing it by hand gives errors that name the line, the column and what was expected
 * without a runtime dependency or a build step (rule-compile.ts gives the tree its meaning).
 *
 *   expr    := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | compare
 *   compare := primary (("==" | "!=" | "<" | "<=" | ">" | ">=") primary | "not"? "in" list)?
 *   primary := "(" expr ")" | "@" name "(" args ")" | "exists" "(" name "," expr ")" | path | literal
 *   path    := name ("." name)*          list := "[" (literal ("," literal)*)? "]"
 */

export type RuleLiteral = string | number | boolean | null;

/** Where a node starts in the source, for messages that point at it. */
export interface Position {
  offset: number;
  line: number;
  column: number;
}

export type RuleNode = (
  | { kind: "or" | "and"; items: RuleNode[] }
  | { kind: "not"; item: RuleNode }
  | { kind: "compare"; op: RuleOperator; left: RuleNode; right: RuleNode }
  | { kind: "in"; negated: boolean; item: RuleNode; values: RuleLiteral[] }
  | { kind: "call"; name: string; args: (RuleLiteral | RuleLiteral[])[] }
  | { kind: "exists"; entity: string; where: RuleNode }
  | { kind: "path"; parts: string[] }
  | { kind: "literal"; value: RuleLiteral }
) & { at: Position };

export const RULE_OPERATORS = ["==", "!=", "<", "<=", ">", ">="] as const;
export type RuleOperator = (typeof RULE_OPERATORS)[number];

/** Rules are written by the app's authors, but bounded all the same: no config can overflow the stack. */
export const MAX_RULE_LENGTH = 10_000;
export const MAX_RULE_DEPTH = 32;

/** A syntax (or meaning) error at a position; the caller adds the config path. */
export class RuleError extends Error {
  constructor(
    readonly at: Position,
    readonly problem: string,
    source: string,
  ) {
    super(`line ${at.line}, column ${at.column}: ${problem}\n${pointAt(source, at)}`);
  }
}

/** The line of the source with a caret under the column. */
function pointAt(source: string, at: Position): string {
  const line = source.split("\n")[at.line - 1] ?? "";
  const start = Math.max(0, at.column - 60);
  return `  ${line.slice(start, start + 100)}\n  ${" ".repeat(at.column - 1 - start)}^`;
}

type Token =
  | { type: "name" | "at-name" | "op" | "punct"; text: string; at: Position }
  | { type: "string" | "number"; value: string | number; text: string; at: Position }
  | { type: "end"; text: ""; at: Position };

const KEYWORDS = new Set(["and", "or", "not", "in", "true", "false", "null", "exists"]);
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"' };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let lineStart = 0;
  const position = (offset: number): Position => ({ offset, line, column: offset - lineStart + 1 });
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    const at = position(i);
    const match = (re: RegExp) => {
      re.lastIndex = i;
      return re.exec(source)?.[0];
    };
    if (c === "@") {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(source)?.[0];
      if (!name) throw new RuleError(at, 'expected a function name after "@" (e.g. @has_role)', source);
      tokens.push({ type: "at-name", text: name, at });
      i += 1 + name.length;
    } else if (/[A-Za-z_]/.test(c)) {
      const name = match(NAME)!;
      tokens.push({ type: "name", text: name, at });
      i += name.length;
    } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(source[i + 1] ?? ""))) {
      const text = match(NUMBER)!;
      const value = Number(text);
      if (!Number.isFinite(value)) throw new RuleError(at, `the number ${text} is out of range`, source);
      tokens.push({ type: "number", value, text, at });
      i += text.length;
    } else if (c === "'" || c === '"') {
      let value = "";
      let j = i + 1;
      for (;;) {
        const d = source[j];
        if (d === undefined || d === "\n") throw new RuleError(at, `unterminated string (no closing ${c})`, source);
        if (d === c) break;
        if (d === "\\") {
          const escaped = ESCAPES[source[j + 1] ?? ""];
          if (escaped === undefined)
            throw new RuleError(position(j), "unknown escape (expected \\' \\\" \\\\ \\n \\t)", source);
          value += escaped;
          j += 2;
        } else {
          value += d;
          j++;
        }
      }
      tokens.push({ type: "string", value, text: source.slice(i, j + 1), at });
      i = j + 1;
    } else {
      const two = source.slice(i, i + 2);
      if (two === "==" || two === "!=" || two === "<=" || two === ">=") {
        tokens.push({ type: "op", text: two, at });
        i += 2;
      } else if (c === "<" || c === ">") {
        tokens.push({ type: "op", text: c, at });
        i++;
      } else if ("()[],.".includes(c)) {
        tokens.push({ type: "punct", text: c, at });
        i++;
      } else if (c === "=") throw new RuleError(at, 'unexpected "=" (compare with "==")', source);
      else if (c === "&" || c === "|" || c === "!")
        throw new RuleError(at, `unexpected "${c}" (write and, or, not)`, source);
      else throw new RuleError(at, `unexpected character ${JSON.stringify(c)}`, source);
    }
  }
  tokens.push({ type: "end", text: "", at: position(source.length) });
  return tokens;
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly source: string,
  ) {}

  private get next(): Token {
    return this.tokens[this.i]!;
  }

  private fail(token: Token, expected: string): never {
    const found = token.type === "end" ? "the end of the rule" : `"${token.text}"`;
    throw new RuleError(token.at, `expected ${expected}, found ${found}`, this.source);
  }

  private isWord(word: string): boolean {
    return this.next.type === "name" && this.next.text === word;
  }

  private comma(): boolean {
    if (this.next.type !== "punct" || this.next.text !== ",") return false;
    this.i++;
    return true;
  }

  private expect(text: string): Token {
    const token = this.next;
    if ((token.type !== "punct" && token.type !== "name") || token.text !== text) this.fail(token, `"${text}"`);
    this.i++;
    return token;
  }

  parse(): RuleNode {
    const node = this.expr();
    if (this.next.type !== "end") this.fail(this.next, 'an operator ("and", "or", "==", …) or the end of the rule');
    return node;
  }

  private nested<T>(at: Position, parse: () => T): T {
    if (++this.depth > MAX_RULE_DEPTH)
      throw new RuleError(at, `nested deeper than ${MAX_RULE_DEPTH} levels`, this.source);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private expr(): RuleNode {
    return this.chain("or", () => this.chain("and", () => this.unary()));
  }

  private chain(word: "or" | "and", item: () => RuleNode): RuleNode {
    const first = item();
    const items = [first];
    while (this.isWord(word)) {
      this.i++;
      items.push(item());
    }
    return items.length === 1 ? first : { kind: word, items, at: first.at };
  }

  private unary(): RuleNode {
    if (this.isWord("not")) {
      const at = this.next.at;
      this.i++;
      return this.nested(at, () => ({ kind: "not", item: this.unary(), at }));
    }
    return this.compare();
  }

  private compare(): RuleNode {
    const left = this.primary();
    const token = this.next;
    if (token.type === "op") {
      this.i++;
      return { kind: "compare", op: token.text as RuleOperator, left, right: this.primary(), at: token.at };
    }
    const negated = this.isWord("not") && this.tokens[this.i + 1]?.text === "in";
    if (negated || this.isWord("in")) {
      this.i += negated ? 2 : 1;
      return { kind: "in", negated, item: left, values: this.list(), at: token.at };
    }
    return left;
  }

  private list(): RuleLiteral[] {
    this.expect("[");
    const values: RuleLiteral[] = [];
    if (this.next.text !== "]")
      do values.push(this.literal("a literal (string, number, true, false or null)"));
      while (this.comma());
    this.expect("]");
    return values;
  }

  private literal(expected: string): RuleLiteral {
    const token = this.next;
    if (token.type === "string" || token.type === "number") {
      this.i++;
      return token.value;
    }
    if (token.type === "name" && (token.text === "true" || token.text === "false" || token.text === "null")) {
      this.i++;
      return token.text === "null" ? null : token.text === "true";
    }
    return this.fail(token, expected);
  }

  private primary(): RuleNode {
    const token = this.next;
    const at = token.at;
    if (token.text === "(" && token.type === "punct") {
      this.i++;
      const inner = this.nested(at, () => this.expr());
      this.expect(")");
      return inner;
    }
    if (token.type === "at-name") {
      this.i++;
      this.expect("(");
      const args: (RuleLiteral | RuleLiteral[])[] = [];
      if (this.next.text !== ")")
        do args.push(this.next.text === "[" ? this.list() : this.literal("an argument (a literal or a [list])"));
        while (this.comma());
      this.expect(")");
      return { kind: "call", name: token.text, args, at };
    }
    if (this.isWord("exists")) {
      this.i++;
      this.expect("(");
      const entity = this.next;
      if (entity.type !== "name" || KEYWORDS.has(entity.text)) this.fail(entity, "an entity name");
      this.i++;
      this.expect(",");
      const where = this.nested(at, () => this.expr());
      this.expect(")");
      return { kind: "exists", entity: entity.text, where, at };
    }
    if (token.type === "name" && !KEYWORDS.has(token.text)) {
      const parts = [token.text];
      this.i++;
      while (this.next.text === "." && this.next.type === "punct") {
        this.i++;
        const part = this.next;
        if (part.type !== "name") this.fail(part, "a name after the dot");
        parts.push(part.text);
        this.i++;
      }
      return { kind: "path", parts, at };
    }
    return { kind: "literal", value: this.literal("a value, a name, @function(…), exists(…) or ( … )"), at };
  }
}

/** Parse a rule's text into its syntax tree; RuleError points at the line and column of the first problem. */
export function parseRuleSyntax(source: string): RuleNode {
  if (source.length > MAX_RULE_LENGTH)
    throw new RuleError(
      { offset: 0, line: 1, column: 1 },
      `a rule has at most ${MAX_RULE_LENGTH} characters (this one has ${source.length})`,
      "",
    );
  return new Parser(tokenize(source), source).parse();
}
