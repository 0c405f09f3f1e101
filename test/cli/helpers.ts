/** The CLI test kit (12.1): run `main(argv, io)` in-process with strings for stdin, prompt answers and env. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { main } from "../../src/cli/main.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The docs' blog app: roles anonymous (default), commenter (default_role_register), author, admin. */
export const BLOG = join(ROOT, "examples/blog/config.ts");
/** The auth tests' app (`authConfig()`): roles user (default_role_register), editor, admin; cheap argon2. */
export const AUTH_APP = join(ROOT, "test/cli/auth-app.config.ts");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliInput {
  /** what is piped on stdin; leave it out to act as a terminal, answering prompts from `prompts` */
  stdin?: string;
  prompts?: string[];
  env?: Record<string, string>;
}

/** Run the CLI in-process; nothing touches process.env or the real streams. */
export async function cli(argv: string[], input: CliInput = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const prompts = [...(input.prompts ?? [])];
  const code = await main(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    stdin: async () => input.stdin,
    prompt: async (question) => {
      const answer = prompts.shift();
      if (answer === undefined) throw new Error(`unexpected prompt: ${question}`);
      return answer;
    },
    env: input.env ?? {},
  });
  return { code, stdout, stderr };
}

/** A temporary directory for this test file, removed after it; `db(name)` is a SQLite URL inside it. */
export function tempDir(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, db: (name: string) => `file:${join(dir, name)}` };
}

/**
 * A config module in `dir` that is the blog example on the SQLite file `dbFile`: for commands that must never
 * open the config's own database (check, test).
 */
export function blogOnFile(dir: string, dbFile: string): string {
  const config = join(dir, `blog-on-${Date.now()}-${Math.random().toString(36).slice(2)}.config.ts`);
  writeFileSync(
    config,
    `import blog from ${JSON.stringify(join(ROOT, "examples/blog/config.ts"))};\n` +
      `export default { ...blog, connection: { url: ${JSON.stringify(`file:${dbFile}`)} } };\n`,
  );
  return config;
}
