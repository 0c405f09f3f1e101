/** `citadel` as a whole (12.1): help, version, exit codes; one run of the real bin in its own process. */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BLOG, cli, ROOT, tempDir } from "./helpers.js";

const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const { db } = tempDir("citadel-cli-main-");

interface Row {
  name: string;
  argv: string[];
  code: 0 | 1 | 2;
  stdout?: string[];
  stderr?: string[];
}

const COMMANDS = [
  "sync",
  "explain",
  "check",
  "diff",
  "test",
  "user create",
  "user list",
  "user set-role",
  "user set-password",
  "user delete",
];

const TABLE: Row[] = [
  {
    name: "no arguments prints the help on stderr",
    argv: [],
    code: 2,
    stderr: ["Usage: citadel <command>", ...COMMANDS],
  },
  { name: "--help", argv: ["--help"], code: 0, stdout: ["Usage: citadel <command>", ...COMMANDS, "Exit codes"] },
  { name: "-h", argv: ["-h"], code: 0, stdout: ["Usage: citadel <command>"] },
  { name: "--version prints package.json's version", argv: ["--version"], code: 0, stdout: [`${version}\n`] },
  {
    name: "a command's --help",
    argv: ["user", "create", "--help"],
    code: 0,
    stdout: ["Usage: citadel user create --config <file> --email <email>", "default_role_register", "--role <role>"],
  },
  {
    name: "--help wins over missing options",
    argv: ["explain", "--help"],
    code: 0,
    stdout: ["Usage: citadel explain", "DENY for a configured role is an answer (exit 0)"],
  },
  { name: "help <command>", argv: ["help", "user", "set-role"], code: 0, stdout: ["Usage: citadel user set-role"] },
  {
    name: "a group's --help lists its commands",
    argv: ["user", "--help"],
    code: 0,
    stdout: ["Usage: citadel user <command>", "user list", "user delete"],
  },
  {
    name: "a group without a command",
    argv: ["user"],
    code: 2,
    stderr: ['"citadel user" needs a command', "user list"],
  },
  { name: "an unknown command", argv: ["frobnicate"], code: 2, stderr: ['unknown command "frobnicate"'] },
  { name: "an unknown subcommand", argv: ["user", "rename"], code: 2, stderr: ['unknown command "user rename"'] },
  { name: "help for an unknown command", argv: ["help", "nope"], code: 2, stderr: ['unknown command "nope"'] },
  { name: "an unknown option", argv: ["user", "list", "--frob"], code: 2, stderr: ["unknown option --frob"] },
  {
    name: "an option of another command",
    argv: ["sync", "--config", BLOG, "--json"],
    code: 2,
    stderr: ["sync does not take --json", "Usage: citadel sync"],
  },
  {
    name: "a missing required option",
    argv: ["user", "create", "--config", BLOG],
    code: 2,
    stderr: ["--email <email> is required", "Usage: citadel user create"],
  },
  { name: "a missing --config", argv: ["user", "list"], code: 2, stderr: ["--config <file> is required"] },
  {
    name: "an option without its value",
    argv: ["user", "list", "--config"],
    code: 2,
    stderr: ["citadel: Option '-c, --config <value>' argument missing"],
  },
  {
    name: "a config file that does not exist",
    argv: ["user", "list", "--config", "nowhere.config.ts", "--db", db("missing.db")],
    code: 1,
    stderr: ["--config: no such file"],
  },
];

describe("citadel: help, version and exit codes (12.1)", () => {
  it.each(TABLE)("$name → exit $code (12.1)", async ({ argv, code, stdout = [], stderr = [] }) => {
    const run = await cli(argv);
    expect(run.code, run.stderr).toBe(code);
    for (const fragment of stdout) expect(run.stdout).toContain(fragment);
    for (const fragment of stderr) expect(run.stderr).toContain(fragment);
    if (code === 0) expect(run.stderr).toBe("");
    else expect(run.stdout).toBe("");
  });
});

describe("the citadel bin (12.1)", () => {
  it("runs under tsx as a user would: reads the password from piped stdin, sets the exit code (12.1, 3.5)", async () => {
    const args = ["--import", "tsx", join(ROOT, "src/cli/index.ts"), "user", "create", "--config", BLOG];
    const child = spawn(process.execPath, [...args, "--db", db("bin.db"), "--email", "bin@example.com"], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdin.end("a long bin password\n");
    const code = await new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(
      /^created user #1 bin@example\.com \(role commenter, from config\.auth\.default_role_register\)\n$/,
    );

    const again = await cli(["user", "list", "--config", BLOG, "--db", db("bin.db")]);
    expect(again.stdout).toContain("bin@example.com");
  });
});
