import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImgup } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { newImageId } from "../../src/domain/ids.ts";
import { originalKey } from "../../src/domain/keys.ts";
import { imgupCli, ROOT, runCli } from "../support/cli-run.ts";

const ESC = String.fromCharCode(27);

/**
 * `imgup …` with stdin, stdout and stderr on a pseudo-terminal (util-linux `script`), as in an
 * operator's shell. `answer` is typed once `prompt` shows.
 */
function onTerminal(
  args: string[],
  env: Record<string, string>,
  dialogue?: { prompt: string; answer: string },
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, imgupCli(), ...args].join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", TERM: "xterm-256color", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let answered = false;
  const onData = (d: Buffer) => {
    output += d;
    if (dialogue && !answered && output.includes(dialogue.prompt)) {
      answered = true;
      child.stdin.write(`${dialogue.answer}\r`);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
  });
}

const plain = (text: string) => text.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "");

/** The embedded database (PGlite in the data directory) and local storage, as `npm start` leaves them. */
describe("imgup on a terminal: purge asks first, long commands show their counts", () => {
  let dataDir: string;
  let env: Record<string, string>;

  const images = async (ownerId: string) => {
    const imgup = await createImgup(loadConfig({ ...env, IMGUP_ROLE: "scheduler" }), {
      logger: pino({ level: "silent" }),
    });
    try {
      const rows = await imgup.database.db
        .selectFrom("images")
        .select("id")
        .where("owner_id", "=", ownerId)
        .execute();
      const objects = (await imgup.store.list("")).objects.length;
      return { rows: rows.length, objects };
    } finally {
      await imgup.stop();
    }
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "imgup-terminal-"));
    env = { IMGUP_DATA_DIR: dataDir, IMGUP_DEV_KEY: "false", LOG_LEVEL: "warn" };
    // Three ready images of alice's and one of bob's, rows and originals.
    const imgup = await createImgup(loadConfig(env), { logger: pino({ level: "silent" }) });
    try {
      const now = new Date();
      for (const ownerId of ["alice", "alice", "alice", "bob"]) {
        const id = newImageId();
        await imgup.database.db
          .insertInto("images")
          .values({
            id,
            owner_id: ownerId,
            status: "ready",
            visibility: "public",
            filename: "seed.png",
            object_key: originalKey(id),
            upload_method: "put",
            declared_content_type: "image/png",
            declared_size: 4,
            content_type: "image/png",
            size: 4,
            width: 1,
            height: 1,
            format: "png",
            upload_expires_at: now,
            ready_at: now,
          })
          .execute();
        await imgup.store.put(originalKey(id), Buffer.from("seed"), { contentType: "image/png" });
      }
    } finally {
      await imgup.stop();
    }
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const prompt = "This cannot be undone. [y/N]";

  it("purge without a terminal and without --yes refuses, and deletes nothing", async () => {
    const r = await runCli(["purge", "--owner", "alice"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("add --yes to confirm");
    expect(await images("alice")).toEqual({ rows: 3, objects: 4 });
  });

  it("purge on a terminal answered 'n' deletes nothing and exits 1", async () => {
    const r = await onTerminal(["purge", "--owner", "alice"], env, { prompt, answer: "n" });
    expect(plain(r.output)).toContain("Delete 3 images of owner alice, with their objects?");
    expect(r.code, r.output).toBe(1);
    expect(plain(r.output)).toContain("imgup: purge cancelled: nothing was deleted");
    expect(await images("alice")).toEqual({ rows: 3, objects: 4 });
  });

  it("sweep on a terminal shows its counts on one redrawn line, and not with --json", async () => {
    const shown = await onTerminal(["sweep", "--dry-run"], env);
    expect(shown.code, shown.output).toBe(0);
    // The status line (redrawn with \r, cleared with ESC[K), then the report.
    expect(shown.output).toContain("\rsweep: 4 objects listed, 0 would be deleted\x1b[K");
    expect(shown.output).toContain("sweep (dry run): 4 objects listed");
    const json = await onTerminal(["sweep", "--dry-run", "--json"], env);
    expect(json.code, json.output).toBe(0);
    expect(json.output).not.toContain("\r\x1b[K");
    expect(json.output).not.toMatch(/\rsweep:/);
    expect(JSON.parse(json.output.replace(/\r\n/g, "\n"))).toMatchObject({
      command: "sweep",
      report: { listed: 4 },
    });
  });

  it("purge on a terminal answered 'y' shows its progress and purges that owner only", async () => {
    const r = await onTerminal(["purge", "--owner", "alice"], env, { prompt, answer: "y" });
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(new RegExp(`\rpurge: [1-3] of 3 images removed${ESC}\\[K`));
    expect(plain(r.output)).toContain("purge: 3 images removed with their objects");
    expect(await images("alice")).toEqual({ rows: 0, objects: 1 });
    expect((await images("bob")).rows).toBe(1);
  });
});
