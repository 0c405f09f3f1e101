/** Citadel's version, as in package.json (test/cli/main.test.ts keeps the two equal); no file is read for it, so edge runtimes know it too. */
export const CITADEL_VERSION = "0.1.0";
