import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { missingBackend } from "./backends.ts";
import { freePort } from "./harness.ts";

const run = promisify(execFile);

/**
 * A RabbitMQ node of the test's own (own node name, ports and data directory), so a test can stop
 * and restart its broker without disturbing the machine's shared one or other test files.
 * Needs rabbitmq-server on PATH (shown as skipped without it; an error with CI=true).
 */
export interface RabbitNode {
  /** amqp://guest:guest@127.0.0.1:<port>/ (guest is allowed from loopback only). */
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Messages ready and unacknowledged in a queue of the default vhost. */
  queueDepth(queue: string): Promise<{ ready: number; unacked: number }>;
  destroy(): Promise<void>;
}

export async function rabbitAvailable(): Promise<boolean> {
  const ok = await run("sh", ["-c", "command -v rabbitmq-server && command -v rabbitmqctl"]).then(
    () => true,
    () => false,
  );
  if (!ok) missingBackend("rabbitmq", "rabbitmq-server on PATH");
  return ok;
}

export async function startRabbitNode(): Promise<RabbitNode> {
  const dir = await mkdtemp(path.join(tmpdir(), "imgup-rabbit-"));
  // rabbitmq-server drops to the rabbitmq user when started as root: it must be able to write here.
  await chmod(dir, 0o777);
  const port = await freePort();
  const distPort = await freePort();
  const node = `imgup${port}@localhost`;
  await writeFile(path.join(dir, "enabled_plugins"), "[].\n");
  // The machine's /etc/rabbitmq/rabbitmq.conf names 5672 explicitly; this file replaces it.
  await writeFile(path.join(dir, "rabbitmq.conf"), `listeners.tcp.default = 127.0.0.1:${port}\n`);
  await mkdir(path.join(dir, "log"));
  await chmod(path.join(dir, "log"), 0o777);
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq.conf"),
    RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(dir, "log"),
    RABBITMQ_PID_FILE: path.join(dir, "pid"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
    RABBITMQ_FEATURE_FLAGS_FILE: path.join(dir, "feature_flags"),
    ERL_CRASH_DUMP: path.join(dir, "erl_crash.dump"),
  };
  const ctl = (...args: string[]) => run("rabbitmqctl", ["-n", node, ...args], { env, timeout: 120_000 });
  const start = async () => {
    await run("rabbitmq-server", ["-detached"], { env, cwd: dir });
    // -detached returns before the node has even registered with epmd.
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await ctl("await_startup", "--timeout", "110");
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  const stop = async () => {
    await ctl("stop").catch(() => undefined);
  };
  try {
    await start();
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}/`,
    port,
    start,
    stop,
    async queueDepth(queue) {
      const { stdout } = await ctl(
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
      );
      for (const line of stdout.split("\n")) {
        const [name, ready, unacked] = line.trim().split(/\s+/);
        if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
      }
      return { ready: 0, unacked: 0 };
    },
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
