/**
 * What the CLI reads and writes, as one explicit value: `main(argv, io)` touches no process globals, so
 * tests drive it in-process with strings, and the bin entry passes the real streams (`processIo`).
 */

export interface CliIo {
  /** Write to standard output (text as given: the CLI ends its own lines). */
  stdout(text: string): void;
  /** Write to standard error. */
  stderr(text: string): void;
  /** Whether standard error is a terminal (progress bars are drawn in place there, printed as lines elsewhere). */
  stderrIsTTY?: boolean;
  /** All of stdin when it is piped, or undefined when stdin is a terminal (then `prompt` is used). */
  stdin(): Promise<string | undefined>;
  /** Ask on the terminal without echoing the answer (passwords). */
  prompt(question: string): Promise<string>;
  /** The environment, e.g. `CITADEL_JWT_SECRET`; never written to. */
  env: Readonly<Record<string, string | undefined>>;
  /** Stops a command that runs until stopped (`serve`, `audit tail --follow`); tests abort it themselves. */
  signal?: AbortSignal;
  /**
   * Turn the process's Ctrl-C (SIGINT) and SIGTERM into an abort of `signal`, so `serve` closes cleanly; a second
   * one ends the process as usual. Only the process's io has it, and only `serve` asks: on every other command
   * Ctrl-C ends the process at once.
   */
  stopOnSignals?(): void;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** Prompt on the process's terminal with echo off; Ctrl-C aborts. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return done();
        if (char === "\u0003") return done(new Error("aborted"));
        if (char === "\u007f" || char === "\b") value = Array.from(value).slice(0, -1).join("");
        else if (char >= " ") value += char;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

/** The real process: its streams, its terminal and its environment. */
export function processIo(): CliIo {
  const stop = new AbortController();
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
    stdin: async () => (process.stdin.isTTY ? undefined : readAll(process.stdin)),
    prompt: promptHidden,
    env: process.env,
    signal: stop.signal,
    stopOnSignals() {
      const names = ["SIGINT", "SIGTERM"] as const;
      const onSignal = (name: NodeJS.Signals) => {
        for (const other of names) process.off(other, onSignal);
        stop.abort(name);
      };
      for (const name of names) process.on(name, onSignal);
    },
  };
}
