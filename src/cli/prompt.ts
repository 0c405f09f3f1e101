/** Reads a password for the CLI: all of stdin when it is piped, or a prompt without echo on a terminal. */

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // one trailing newline is the end of `echo`, not part of the password
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

/** Prompt on the terminal with echo off; Ctrl-C aborts. */
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

/** The new user's password: piped on stdin, or typed twice at a prompt. */
export async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const password = await readStdin();
    if (password === "") throw new Error("no password on stdin (pipe it in, or run in a terminal to be prompted)");
    return password;
  }
  const password = await promptHidden("Password: ");
  if ((await promptHidden("Repeat the password: ")) !== password) throw new Error("the passwords do not match");
  return password;
}
