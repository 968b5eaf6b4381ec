/**
 * The Node.js versions imgup runs on, checked before anything else loads: an older Node fails
 * later with a syntax or missing-API error that names no version. Kept free of imports and of
 * syntax newer than Node 14 so the message itself shows on any Node that can parse the bin.
 */

/** What package.json's `engines` says, in words. 20.19 and 22.12 run ES modules from require(). */
export const SUPPORTED_NODE = "Node.js 20.19 or later in 20.x, 22.12 or later, or 24";

export function unsupportedNodeMessage(version: string = process.versions.node): string | null {
  const [major = 0, minor = 0] = version.split(".").map((part) => Number.parseInt(part, 10));
  const ok = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
  if (ok) return null;
  return `imgup needs ${SUPPORTED_NODE}; this is Node.js ${version} (${process.execPath}). Install a supported Node (Node 24 LTS is recommended; Node 20 is end-of-life) and run imgup with it.`;
}

/** Exits with status 1 and the message on stderr when this Node is not supported. */
export function checkRuntime(): void {
  const message = unsupportedNodeMessage();
  if (message === null) return;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
