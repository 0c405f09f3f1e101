/**
 * The README's quick start (1.6): `npm start` serves examples/blog, and a process manager's stop (SIGTERM to the
 * npm process it started) stops the server too: no node process is left answering on the port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
let npm: ChildProcess | undefined;
afterAll(() => {
  // whatever happened, nothing it started outlives the test (npm leads a process group of its own)
  try {
    if (npm?.pid) process.kill(-npm.pid, "SIGKILL");
  } catch {
    // already gone
  }
});

/** The URL the demo prints once it listens. */
function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before listening: ${out}`)));
  });
}

it("npm start serves the blog; SIGTERM to npm stops the server (1.6)", async () => {
  npm = spawn("npm", ["start"], {
    cwd: root,
    env: { ...process.env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const url = await listening(npm);
  const posts = await fetch(`${url}/api/data/posts`);
  expect(posts.status).toBe(200);
  const exited = new Promise((resolve) => npm!.once("exit", resolve));
  npm.kill("SIGTERM");
  await exited;
  // the server was the npm process's own child: nothing answers any more
  await expect(fetch(`${url}/api/data/posts`)).rejects.toThrow();
}, 60_000);
