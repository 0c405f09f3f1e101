/** A command line the CLI cannot act on (exit code 2); `hint` says what would be right. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint = "Run `citadel --help` for the commands.",
  ) {
    super(message);
  }
}
