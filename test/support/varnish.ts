import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "vitest";
import { eventually } from "./harness.ts";

/**
 * Debian's varnishd with deploy/varnish/imgup.vcl as shipped, only its backend replaced: one imgup
 * port, or several behind vmod_directors' round robin (as docs/cdn.md says to do).
 */
const VCL = path.join(import.meta.dirname, "../../deploy/varnish/imgup.vcl");

function findVarnishd(): string | null {
  for (const candidate of ["/usr/sbin/varnishd", "/usr/local/sbin/varnishd"]) {
    if (spawnSync(candidate, ["-V"]).status === 0) return candidate;
  }
  const onPath = spawnSync("varnishd", ["-V"]);
  return onPath.status === 0 ? "varnishd" : null;
}

/**
 * varnishd's path, or null: then a skipped test says why, once per calling file (as
 * test/support/backends.ts does for services), and in CI (CI=true) it is an error.
 */
export function varnishdOrSkip(): string | null {
  const bin = findVarnishd();
  if (bin) return bin;
  const reason = "varnish (varnishd not installed; Debian package varnish)";
  if (process.env.CI === "true") throw new Error(`${reason}: CI installs it (.ci/run)`);
  it.skip(reason, () => {});
  return null;
}

export interface Varnish {
  url: string;
  stop(): Promise<void>;
}

/** varnishd in the foreground (-F) as a child of this test, on its own work dir; killed in afterAll. */
export async function startVarnish(bin: string, port: number, backendPorts: number[]): Promise<Varnish> {
  const dir = await mkdtemp(path.join(tmpdir(), "imgup-varnish-"));
  // Started as root, varnishd reads the VCL and keeps its work dir as an unprivileged user.
  await chmod(dir, 0o755);
  const vcl = withBackends(await readFile(VCL, "utf8"), backendPorts);
  await writeFile(path.join(dir, "imgup.vcl"), vcl);
  const child: ChildProcess = spawn(
    bin,
    [
      "-F",
      ...["-n", path.join(dir, "n"), "-f", path.join(dir, "imgup.vcl")],
      ...["-a", `127.0.0.1:${port}`, "-T", "none", "-s", "malloc,64m"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!gone) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Ready when it answers through the VCL (a pass to imgup's /healthz); an exit ends the wait.
    await Promise.race([
      eventually(async () => {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        return gone || res.headers.get("x-cache") !== null;
      }),
      exited,
    ]);
    if (gone) throw new Error(`varnishd exited: ${output}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

/** The shipped VCL with its one `backend imgup` replaced by these ports (round robin over several). */
function withBackends(vcl: string, ports: number[]): string {
  const block = /backend imgup \{[^}]*\}/;
  if (!block.test(vcl)) throw new Error("deploy/varnish/imgup.vcl has no `backend imgup { ... }` block");
  const backend = (name: string, port: number) =>
    `backend ${name} {\n    .host = "127.0.0.1";\n    .port = "${port}";\n    .first_byte_timeout = 60s;\n}\n`;
  if (ports.length === 1) return vcl.replace(block, backend("imgup", ports[0] ?? 0));
  const names = ports.map((_, i) => `imgup${i}`);
  // A vcl_recv defined before the shipped one runs first (Varnish concatenates them in order).
  const director = [
    "import directors;",
    ...ports.map((port, i) => backend(names[i] ?? "", port)),
    "sub vcl_init {\n    new lb = directors.round_robin();",
    ...names.map((n) => `    lb.add_backend(${n});`),
    "}\nsub vcl_recv {\n    set req.backend_hint = lb.backend();\n}",
  ].join("\n");
  return vcl.replace(block, director);
}
