/** Reads a password for the CLI: all of stdin when it is piped, or typed twice at a prompt without echo. */
import type { CliIo } from "./io.js";

/** The password from `io`; an empty stdin and two different answers at the prompt are errors. */
export async function readPassword(io: CliIo): Promise<string> {
  const piped = await io.stdin();
  if (piped !== undefined) {
    // one trailing newline is the end of `echo`, not part of the password
    const password = piped.replace(/\r?\n$/, "");
    if (password === "") throw new Error("no password on stdin (pipe it in, or run in a terminal to be prompted)");
    return password;
  }
  const password = await io.prompt("Password: ");
  if ((await io.prompt("Repeat the password: ")) !== password) throw new Error("the passwords do not match");
  return password;
}
