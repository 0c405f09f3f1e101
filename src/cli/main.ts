/**
 * `citadel` (12.1), drivable in-process: `main(argv, io)` parses, runs one command from `commands.ts` and
 * returns the exit code: 0 done (including `--help`, `--version` and an explain that answers DENY),
 * 1 the command failed (unknown user or role, bad password, config error, refused sync, ...),
 * 2 the command line is wrong (no command, unknown command or option, missing option), 3 `diff` found access
 * the new config widens or may widen (a command's own answer, like 0).
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { CITADEL_VERSION } from "../version.js";
import { WIDENS } from "./access-report.js";
import { COMMANDS, type Command, type Given, OPTIONS, type OptionName, UsageError, type Values } from "./commands.js";
import type { CliIo } from "./io.js";

export type { CliIo } from "./io.js";

/** The exit codes (see the header). */
export const EXIT = { ok: 0, failed: 1, usage: 2, widens: WIDENS } as const;

const GLOBAL = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

const PARSE_OPTIONS: NonNullable<ParseArgsConfig["options"]> = {
  ...GLOBAL,
  ...Object.fromEntries(
    Object.entries(OPTIONS).map(([name, o]) => [name, { type: o.type, ...("short" in o ? { short: o.short } : {}) }]),
  ),
};

function optionUsage(name: OptionName, required: boolean): string {
  const o = OPTIONS[name];
  const text = `--${name}${"arg" in o ? ` ${o.arg}` : ""}`;
  return required ? text : `[${text}]`;
}

function synopsis(command: Command): string {
  const ordered = [...command.required, ...command.options.filter((o) => !command.required.includes(o))];
  const argument = command.argument ? ` <${command.argument.name}>` : "";
  return `citadel ${command.name} ${ordered.map((o) => optionUsage(o, command.required.includes(o))).join(" ")}${argument}`;
}

function commandHelp(command: Command): string {
  const rows = command.options.map((name) => {
    const o = OPTIONS[name];
    const flag = `--${name}${"short" in o ? `, -${o.short}` : ""}${"arg" in o ? ` ${o.arg}` : ""}`;
    return `  ${flag.padEnd(26)}${o.help}`;
  });
  return [
    `Usage: ${synopsis(command)}`,
    "",
    `${command.summary}.`,
    ...(command.details ? [command.details] : []),
    "",
    ...(command.argument
      ? ["Argument:", `  ${`<${command.argument.name}>`.padEnd(26)}${command.argument.help}`, ""]
      : []),
    "Options:",
    ...rows,
    `  ${"--help, -h".padEnd(26)}show this help`,
  ].join("\n");
}

function listHelp(commands: Command[], title: string): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    title,
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Options:",
    "  --help, -h     show help (`citadel <command> --help` for a command's options)",
    "  --version, -v  print the version",
    "",
    "Exit codes: 0 done, 1 the command failed, 2 the command line is wrong, 3 `diff` found access that widens.",
  ].join("\n");
}

const HELP = listHelp(COMMANDS, "Usage: citadel <command> [options]");

/** The help for `words`: one command, a group such as `user`, or everything; undefined when nothing matches. */
function helpFor(words: string[]): string | undefined {
  if (words.length === 0) return HELP;
  const name = words.join(" ");
  const command = COMMANDS.find((c) => c.name === name);
  if (command) return commandHelp(command);
  const group = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
  return group.length > 0 ? listHelp(group, `Usage: citadel ${name} <command> [options]`) : undefined;
}

/** Node's parseArgs errors, reworded: "unknown option --frob" instead of a hint about `--`. */
function parseError(error: unknown): never {
  const code = (error as { code?: string }).code ?? "";
  if (!code.startsWith("ERR_PARSE_ARGS")) throw error;
  const message = (error as Error).message;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION")
    throw new UsageError(`unknown option ${/'([^']+)'/.exec(message)?.[1] ?? message}`);
  throw new UsageError(message.split(". ")[0]!);
}

interface Parsed {
  values: Values & { help?: boolean; version?: boolean };
  words: string[];
  /** the options as written (`rawName` is `--role` or `-c`) */
  options: { name: string; rawName: string; value?: string }[];
}

function parse(argv: string[]): Parsed {
  try {
    const parsed = parseArgs({
      args: argv,
      options: PARSE_OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    return {
      values: parsed.values as Parsed["values"],
      words: parsed.positionals,
      options: parsed.tokens.flatMap((t) =>
        t.kind === "option" ? [{ name: t.name, rawName: t.rawName, value: t.value }] : [],
      ),
    };
  } catch (error) {
    return parseError(error);
  }
}

function write(io: CliIo, stream: "stdout" | "stderr", text: string) {
  io[stream](`${text}\n`);
}

async function run(argv: string[], io: CliIo): Promise<number> {
  if (argv.length === 0) {
    write(io, "stderr", HELP);
    return EXIT.usage;
  }
  const { values, words, options } = parse(argv);
  if (values.version) {
    write(io, "stdout", CITADEL_VERSION);
    return EXIT.ok;
  }
  if (words[0] === "help" || values.help) {
    const topic = words[0] === "help" ? words.slice(1) : words;
    const help = helpFor(topic);
    if (help === undefined) throw new UsageError(`unknown command "${topic.join(" ")}"`);
    write(io, "stdout", help);
    return EXIT.ok;
  }
  const name = words.join(" ");
  // a command's own words, then its argument when it takes one
  const command =
    COMMANDS.find((c) => c.name === name) ??
    COMMANDS.find((c) => c.argument !== undefined && c.name === words.slice(0, -1).join(" "));
  if (!command) {
    const group = helpFor(words);
    if (words.length > 0 && group) throw new UsageError(`"citadel ${name}" needs a command`, group);
    throw new UsageError(words.length > 0 ? `unknown command "${name}"` : "no command given");
  }
  const usage = `Usage: ${synopsis(command)}\nRun \`citadel ${command.name} --help\` for details.`;
  const accepted = new Set<string>([...command.options, "help"]);
  const given = new Map<string, string[]>();
  for (const option of options) {
    if (!accepted.has(option.name)) throw new UsageError(`${command.name} does not take ${option.rawName}`, usage);
    const seen = given.get(option.name) ?? [];
    if (seen.length > 0 && !command.repeatable?.includes(option.name as OptionName))
      throw new UsageError(`${option.rawName} is given more than once`, usage);
    given.set(option.name, [...seen, option.value ?? ""]);
  }
  for (const option of command.required)
    if (values[option] === undefined || values[option] === "")
      throw new UsageError(`${optionUsage(option, true)} is required`, usage);
  const argument = command.argument && name !== command.name ? words.at(-1) : undefined;
  if (command.argument && argument === undefined) throw new UsageError(`<${command.argument.name}> is required`, usage);
  const repeated = given as Given["repeated"];
  return (await command.run(values, io, { repeated, argument })) ?? EXIT.ok;
}

/** Run the CLI with `argv` (without node and the script) and return the exit code; writes only through `io`. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError) {
      write(io, "stderr", `citadel: ${message}\n\n${error.hint}`);
      return EXIT.usage;
    }
    write(io, "stderr", `citadel: ${message}`);
    // a failure that is not one of ours (a bug, a driver error) shows where it came from when asked
    if (io.env.CITADEL_DEBUG && error instanceof Error && error.stack) write(io, "stderr", error.stack);
    return EXIT.failed;
  }
}
