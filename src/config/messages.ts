/** Startup messages for config problems: the path, what is wrong, and the nearest known key (§1.5, §1.8). */
import type * as v from "valibot";

/** Edit distance between two keys (insertions, deletions, substitutions), for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key closest to `key`, when it is close enough to be a likely misspelling. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const prefix = best !== undefined && (best.startsWith(key) || key.startsWith(best));
  return best !== undefined && (bestDistance <= Math.max(2, Math.floor(key.length / 3)) || prefix) ? best : undefined;
}

/** "unknown key `x` (did you mean `y`?)", or the known keys when none is near. */
export function unknownKey(key: string, keys: readonly string[]): string {
  const near = nearestKey(key, keys);
  const hint = near ? ` (did you mean \`${near}\`?)` : ` (known keys: ${keys.map((k) => `\`${k}\``).join(", ")})`;
  return `unknown key \`${key}\`${hint}`;
}

/** The message of an object schema that knows `keys`: unknown keys name the nearest known one. */
export function unknownKeyMessage(keys: readonly string[]) {
  return (issue: v.BaseIssue<unknown>): string =>
    issue.expected === "never"
      ? unknownKey(String(issue.input), keys)
      : `expected an object but received ${issue.received}`;
}

/**
 * A union reports "Expected (string | Object)" even when the object branch failed deep inside; the
 * deepest issue of its branches says what is really wrong. Branch issues have paths relative to the union.
 */
export function deepestIssue(issue: v.BaseIssue<unknown>): { issue: v.BaseIssue<unknown>; path: v.IssuePathItem[] } {
  const path = [...(issue.path ?? [])];
  let best = { issue, path };
  let bestDepth = 0;
  for (const inner of issue.issues ?? []) {
    const candidate = deepestIssue(inner);
    if (candidate.path.length > bestDepth) {
      best = { issue: candidate.issue, path: [...path, ...candidate.path] };
      bestDepth = candidate.path.length;
    }
  }
  return best;
}

/** `config.auth.roles.user.permissions[2]`: where an issue is, as the user wrote it. */
export function pathOf(items: readonly v.IssuePathItem[] = [], root = "config"): string {
  let path = root;
  for (const item of items) {
    const key = (item as { key: unknown }).key;
    path += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  }
  return path;
}
