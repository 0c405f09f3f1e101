#!/usr/bin/env node
/** The `citadel` bin: runs `main` on the process's arguments, streams and environment (`citadel --help`). */
import { processIo } from "./io.js";
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2), processIo());
