/**
 * Test files share a worker's modules (isolate: false): a worker never serves two projects (Vitest keeps them
 * apart), but if one ever did, every file after the first would run on the first one's engine. Said here, loudly.
 */
import { ENGINE } from "../helpers/engines.js";

const asked = process.env.CITADEL_TEST_ENGINE || "sqlite";
if (ENGINE !== asked)
  throw new Error(`this worker runs ${asked} tests with test/helpers/engines.ts loaded for ${ENGINE}`);
