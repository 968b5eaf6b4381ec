import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/harness.ts";

/** Issue 12: an exception nothing caught while serving a request is a 500, never an exit. */
describe("the crash guard (installCrashGuard)", () => {
  let child: ChildProcess;
  let baseUrl = "";
  let out = "";
  const lines: Array<Record<string, unknown>> = [];
  let exit: { code: number | null } | null = null;

  beforeAll(async () => {
    child = spawn(process.execPath, ["--import", "tsx", "test/support/crash-guard-child.ts"], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.once("exit", (code) => {
      exit = { code };
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d;
      for (const line of String(d).split("\n")) if (line.startsWith("{")) lines.push(JSON.parse(line));
    });
    child.stderr?.on("data", (d: Buffer) => {
      out += d;
    });
    const listening = await eventually(async () => lines.find((l) => l.msg === "listening"), 60_000);
    baseUrl = String(listening.address);
  });
  afterAll(() => {
    child?.kill("SIGKILL");
  });

  async function expectAlive() {
    const res = await fetch(`${baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(exit, out).toBeNull();
  }

  it("an 'error' event with no listener in a timer the handler started: 500 internal_error", async () => {
    const res = await fetch(`${baseUrl}/boom-later`);
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await res.json()).toMatchObject({ status: 500, code: "internal_error" });
    await expectAlive();
    expect(lines.some((l) => l.msg === "uncaught exception while serving the request: answered 500")).toBe(
      true,
    );
  });

  it("a throw from the request body's own 'data' event: 500, and the process keeps serving", async () => {
    const res = await fetch(`${baseUrl}/boom-body`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(1024),
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: "internal_error" });
    await expectAlive();
  });

  it("an exception outside any request still logs fatal and exits 1", async () => {
    await fetch(`${baseUrl}/arm`);
    await eventually(async () => exit !== null, 30_000);
    expect(exit).toEqual({ code: 1 });
    expect(lines.some((l) => l.msg === "uncaught exception outside any request: exiting")).toBe(true);
  });
});
