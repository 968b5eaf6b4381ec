/**
 * nginx as the yardstick of static delivery: Debian's nginx-light, installed if missing, run in
 * the foreground with a configuration of our own in a temp dir (its own prefix, pid, logs and temp
 * paths, a free port, one worker per core, sendfile, no access log), serving a directory as is.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { onInterrupt } from "./cleanup.ts";
import { freePort, type ServerProcess, spawnServer } from "./server-process.ts";

/** The nginx binary, installing nginx-light with apt when there is none; null (and why) if impossible. */
export function findOrInstallNginx(): { bin: string } | { bin: null; why: string } {
  const found = whichNginx();
  if (found) return { bin: found };
  if (process.getuid?.() !== 0) return { bin: null, why: "nginx is not installed and installing needs root" };
  const hasApt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" }).status === 0;
  if (!hasApt) return { bin: null, why: "nginx is not installed and apt-get is not available" };
  console.log("installing nginx-light (apt-get)…");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "nginx-light"], {
      env,
      encoding: "utf8",
    });
  let r = install();
  if (r.status !== 0) {
    // Stale package lists are the usual cause; refresh once and retry.
    spawnSync("apt-get", ["update", "-qq"], { env, encoding: "utf8" });
    r = install();
  }
  const bin = whichNginx();
  if (r.status !== 0 || !bin)
    return { bin: null, why: `apt-get install nginx-light failed: ${r.stderr.trim()}` };
  return { bin };
}

function whichNginx(): string | null {
  for (const candidate of ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]) {
    if (spawnSync(candidate, ["-v"]).status === 0) return candidate;
  }
  const r = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export interface NginxOptions {
  bin: string;
  /** Directory served at `/`. */
  root: string;
  /** Headers imgup sends with a public variant, so both answers are alike. */
  cacheControl: string;
}

/** Starts nginx in the foreground (a child we can stop); removes its temp dir on stop. */
export async function startNginx(opts: NginxOptions): Promise<ServerProcess & { version: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "imgup-bench-nginx-"));
  const removeDir = async () => {
    await rm(dir, { recursive: true, force: true });
    forget();
  };
  const forget = onInterrupt(removeDir);
  const port = await freePort();
  // nginx -V prints its version and configure flags to stderr.
  const built = spawnSync(opts.bin, ["-V"], { encoding: "utf8" }).stderr;
  const version = /nginx version: (\S+)/.exec(built)?.[1] ?? "nginx";
  const conf = path.join(dir, "nginx.conf");
  await mkdir(path.join(dir, "temp"));
  await writeFile(conf, nginxConf(opts, dir, port, tempPathDirectives(built, dir)));
  const test = spawnSync(opts.bin, ["-t", "-q", "-p", dir, "-c", conf, "-e", path.join(dir, "error.log")], {
    encoding: "utf8",
  });
  if (test.status !== 0) {
    await removeDir();
    throw new Error(`nginx rejected its configuration: ${test.stderr}`);
  }
  const server = await spawnServer({
    name: "nginx",
    command: opts.bin,
    args: ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log")],
    env: { PATH: process.env.PATH },
    baseUrl: `http://127.0.0.1:${port}`,
    readyPath: "/.bench-ready",
  }).catch(async (err) => {
    await removeDir();
    throw err;
  });
  return {
    ...server,
    version,
    stop: async () => {
      try {
        await server.stop();
      } finally {
        await removeDir();
      }
    },
  };
}

function nginxConf(opts: NginxOptions, dir: string, port: number, tempPaths: string[]): string {
  // As root, workers would drop to "nobody", who cannot read a 0700 temp dir.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  return `${user}daemon off;
master_process on;
worker_processes ${os.cpus().length};
pid ${path.join(dir, "nginx.pid")};
error_log ${path.join(dir, "error.log")} warn;
events { worker_connections 4096; }
http {
  ${tempPaths.join("\n  ")}
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  etag on;
  types { image/webp webp; image/jpeg jpg; image/png png; image/avif avif; image/gif gif; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${opts.root};
    location = /.bench-ready { return 200 "ok\\n"; }
    location / { add_header Cache-Control "${opts.cacheControl}"; }
  }
}
`;
}

/**
 * Every temp path compiled into this nginx (Debian points them at /var/lib/nginx) moved into our
 * dir; only the modules this build has, since a directive of a missing module is an error.
 */
function tempPathDirectives(built: string, dir: string): string[] {
  const modules: Array<[flag: string, directive: string]> = [
    ["--http-client-body-temp-path", "client_body_temp_path"],
    ["--http-proxy-temp-path", "proxy_temp_path"],
    ["--http-fastcgi-temp-path", "fastcgi_temp_path"],
    ["--http-uwsgi-temp-path", "uwsgi_temp_path"],
    ["--http-scgi-temp-path", "scgi_temp_path"],
  ];
  const out = [`client_body_temp_path ${path.join(dir, "temp", "client_body")};`];
  for (const [flag, directive] of modules.slice(1)) {
    const name = directive.replace("_temp_path", "");
    const without = built.includes(`--without-http_${name}_module`);
    if (built.includes(flag) && !without) out.push(`${directive} ${path.join(dir, "temp", name)};`);
  }
  return out;
}
