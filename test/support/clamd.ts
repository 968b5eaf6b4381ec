import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { it } from "vitest";
import { eventually, freePort } from "./harness.ts";

/**
 * A real clamd (Debian's clamav-daemon) for the tests, with a signature database the test writes
 * itself: freshclam cannot reach its mirrors here, and the official databases take ~20 s and
 * >1 GB to load, while one custom .ndb loads in well under a second.
 */
const CANDIDATES = ["/usr/sbin/clamd", "/usr/local/sbin/clamd"];

/** The EICAR anti-virus test string (harmless by design; every scanner is meant to flag it). */
export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/** A marker an otherwise valid image carries in a JPEG comment: the "custom signature" case. */
export const TEST_MARKER = "imgup-test-malware-marker-6a1f0c2e";
/** clamd appends .UNOFFICIAL to the names of signatures that are not from its official databases. */
export const EICAR_SIGNATURE = "Imgup.Test.EICAR.UNOFFICIAL";
export const MARKER_SIGNATURE = "Imgup.Test.Marker.UNOFFICIAL";

/**
 * clamd's path, or null: then a skipped test says why (as test/support/varnish.ts does), and in
 * CI (CI=true) it is an error.
 */
export function clamdOrSkip(): string | null {
  const bin = CANDIDATES.find((candidate) => existsSync(candidate));
  if (bin) return bin;
  const reason = "clamd (not installed; Debian package clamav-daemon)";
  if (process.env.CI === "true") throw new Error(`${reason}: CI installs it (.ci/run)`);
  it.skip(reason, () => {});
  return null;
}

/** An .ndb (body-based) database: the EICAR string and the marker, anywhere in any file type. */
export function testSignatures(): string {
  const hex = (s: string) => Buffer.from(s, "latin1").toString("hex");
  return [`Imgup.Test.EICAR:0:*:${hex(EICAR)}`, `Imgup.Test.Marker:0:*:${hex(TEST_MARKER)}`, ""].join("\n");
}

/** A JPEG with `text` in a comment (COM) segment right after SOI: still a valid, decodable JPEG. */
export function jpegWithComment(jpeg: Buffer, text: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error("not a JPEG");
  const body = Buffer.from(text, "latin1");
  const header = Buffer.from([0xff, 0xfe, 0, 0]);
  header.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), header, body, jpeg.subarray(2)]);
}

export interface Clamd {
  /** IMGUP_CLAMD_URL for it (tcp://127.0.0.1:port); the same across stop/start. */
  url: string;
  port: number;
  /** How long the last start took until clamd answered PING. */
  startupMs: number;
  /** Stops clamd (SIGTERM) and waits for its exit; the port then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port and database. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  log(): Promise<string>;
}

/**
 * clamd in the foreground as a child of this test: its own config, TCP port, database directory
 * (the test signatures only) and log file. Ready once it answers PING.
 */
export async function startClamd(bin: string, opts: { streamMaxLength?: string } = {}): Promise<Clamd> {
  const dir = await mkdtemp(path.join(tmpdir(), "imgup-clamd-"));
  const dbDir = path.join(dir, "db");
  await mkdir(dbDir);
  await writeFile(path.join(dbDir, "imgup-test.ndb"), testSignatures());
  const port = await freePort();
  const logFile = path.join(dir, "clamd.log");
  const conf = [
    "Foreground yes",
    `TCPSocket ${port}`,
    "TCPAddr 127.0.0.1",
    `DatabaseDirectory ${dbDir}`,
    `LogFile ${logFile}`,
    `PidFile ${path.join(dir, "clamd.pid")}`,
    `StreamMaxLength ${opts.streamMaxLength ?? "25M"}`,
    // No freshclam here: nothing to reload, and no self-check noise in the log.
    "SelfCheck 0",
    "",
  ].join("\n");
  const confFile = path.join(dir, "clamd.conf");
  await writeFile(confFile, conf);

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = "";
  const clamd: Clamd = {
    url: `tcp://127.0.0.1:${port}`,
    port,
    startupMs: 0,
    async start() {
      if (child) return;
      const t0 = performance.now();
      const proc = spawn(bin, ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      proc.stdout?.on("data", (d) => {
        output += d;
      });
      proc.stderr?.on("data", (d) => {
        output += d;
      });
      let gone = false;
      exited = new Promise<void>((resolve) =>
        proc.once("exit", () => {
          gone = true;
          if (child === proc) child = null;
          resolve();
        }),
      );
      await Promise.race([eventually(async () => gone || (await ping(port)), 60_000), exited]);
      if (gone) throw new Error(`clamd exited while starting: ${output}\n${await clamd.log()}`);
      clamd.startupMs = performance.now() - t0;
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      proc.kill("SIGTERM");
      await exited;
      // Closed: nothing answers on the port any more (what the outage test relies on).
      await eventually(async () => !(await ping(port)), 30_000);
    },
    async close() {
      await clamd.stop();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logFile, "utf8").catch(() => ""),
  };
  try {
    await clamd.start();
  } catch (err) {
    await clamd.close().catch(() => undefined);
    throw err;
  }
  return clamd;
}

/** true when clamd answers zPING with PONG within a second. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.on("connect", () => socket.write("zPING\0"));
    socket.on("data", (d) => {
      reply += d;
      if (reply.includes("\0")) done(reply.startsWith("PONG"));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(reply.startsWith("PONG")));
  });
}
