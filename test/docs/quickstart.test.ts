import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/harness.ts";
import { s3TestConnection } from "../support/s3-target.ts";
import { docTest, REPO } from "./markdown.ts";
import { cleanEnv, NEVER_RESTART_RGW, runShell } from "./shell.ts";

/**
 * What a fresh clone holds: the files git tracks or would track (so uncommitted work is tested
 * too), without data/, dist/ or anything ignored. node_modules is linked, not installed: `npm
 * install` is the one step of the README no test repeats (CI runs `npm ci` before the suite).
 */
function freshClone(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgup-clone-"));
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f && existsSync(path.join(REPO, f)));
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    cpSync(path.join(REPO, f), path.join(dir, f));
  }
  symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

/** A network namespace of its own gives the README its port 8080 on a machine where it may be taken. */
const ownNetwork = spawnSync("unshare", ["-rn", "true"]).status === 0;

describe("README.md on a fresh clone", () => {
  const clones: string[] = [];
  afterAll(() => {
    for (const dir of clones) rmSync(dir, { recursive: true, force: true });
  });

  it("says to install and start with the two npm commands", () => {
    expect(docTest("README.md", "start").trim()).toBe("npm install && npm start");
    expect(JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).scripts.start).toContain(
      "serve",
    );
  });

  it("starts with npm start and the tour works verbatim against it", async () => {
    const dir = freshClone();
    clones.push(dir);
    let tour = docTest("README.md", "tour");
    let env = cleanEnv();
    if (!ownNetwork) {
      // No network namespace here: the same tour on another port, the one change made to it.
      const port = String(await freePort());
      tour = tour.replaceAll("localhost:8080", `localhost:${port}`);
      env = cleanEnv({ PORT: port });
    }
    const start = docTest("README.md", "start").replace(/^npm install && /, "");
    const script = `
${ownNetwork ? "ip link set lo up" : ""}
${start.trim()} > server.log 2>&1 &
for i in $(seq 1 240); do
  if [ -s data/dev-api-key ] && curl -sf "http://localhost:\${PORT:-8080}/healthz" > /dev/null; then break; fi
  sleep 1
done
grep -o 'demo page: http://localhost:[0-9]*/#key=' server.log || { cat server.log; exit 1; }
${tour}`;
    const { code, output } = await runShell(script, {
      cwd: dir,
      env,
      prefix: ownNetwork ? ["unshare", "-rn"] : [],
      timeoutMs: 280_000,
    });
    expect(code, `${output}\n--- server.log\n${readLog(dir)}`).toBe(0);
    expect(output).toContain('"status": "ready"');
    expect(output).toMatch(/thumb\.webp: .*Web\/P image.*200x200/);
    expect(output).toMatch(/small\.jpg: +JPEG image data.*400x/);
    expect(existsSync(path.join(dir, "dist/web/index.html")), "npm start builds the demo page").toBe(true);
  }, 300_000);

  it("runs the tests with npm test, exactly as .ci/run does", () => {
    expect(docTest("README.md", "test-command").trim()).toBe("npm test");
    // CI runs it whole on Node 24: the script puts Node 24 first on PATH and runs `npm test`.
    const ci = readFileSync(path.join(REPO, ".ci/run"), "utf8").split("\n");
    expect(ci).toContain("bash scripts/test-node24.sh");
    const node24 = readFileSync(path.join(REPO, "scripts/test-node24.sh"), "utf8").trim().split("\n");
    expect(node24.at(-1)).toMatch(/^PATH=.*:\$PATH" exec npm test -- "\$@"$/);
    expect(JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).scripts.test).toBe("vitest run");
  });
});

function readLog(dir: string): string {
  try {
    return readFileSync(path.join(dir, "server.log"), "utf8").slice(-5000);
  } catch {
    return "(none)";
  }
}

describe("docs/operations.md", () => {
  it.skipIf(!s3TestConnection())(
    "runs the tests against every backend with the block .ci/run follows",
    async () => {
      // The suite is what runs this test: npm records what it was asked to do and with which backends.
      const recordDir = mkdtempSync(path.join(tmpdir(), "imgup-npm-"));
      const record = path.join(recordDir, "npm.json");
      const shim = `npm() { node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ args: process.argv.slice(2), env: process.env }))' "${record}" "$@"; }\n`;
      const { code, output } = await runShell(
        shim + NEVER_RESTART_RGW + docTest("docs/operations.md", "test-backends"),
        {
          cwd: REPO,
          env: cleanEnv(),
        },
      );
      expect(code, output).toBe(0);
      const seen = JSON.parse(readFileSync(record, "utf8")) as {
        args: string[];
        env: Record<string, string>;
      };
      expect(seen.args).toEqual(["test"]);
      expect(seen.env.TEST_S3_ENDPOINT).toBe(process.env.TEST_S3_ENDPOINT);
      expect(seen.env.DATABASE_URL).toMatch(/^postgres:\/\//);
      expect(seen.env.REDIS_URL).toMatch(/^redis:\/\//);
      rmSync(recordDir, { recursive: true, force: true });
      const ci = readFileSync(path.join(REPO, ".ci/run"), "utf8");
      expect(ci).toContain('eval "$(bash scripts/local-s3.sh env)"');
      expect(ci).toContain("bash scripts/local-s3.sh start");
    },
  );

  it("lists the commands and options imgup --help knows", () => {
    const help = execFileSync(process.execPath, ["--import", "tsx", "src/cli.ts", "--help"], {
      cwd: REPO,
      encoding: "utf8",
    });
    const lines = docTest("docs/operations.md", "cli-usage").trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) {
      const synopsis = line.replace(/\s+#.*$/, "");
      expect(synopsis.startsWith("npx imgup "), line).toBe(true);
      const words = synopsis.slice("npx imgup ".length).split(/\s+/);
      const command = words.filter(
        (w, i) => /^[a-z][a-z-]*$/.test(w) && words.slice(0, i).every((p) => /^[a-z][a-z-]*$/.test(p)),
      );
      expect(help, line).toContain(`  ${command.join(" ")}`);
      for (const flag of synopsis.match(/--[a-z-]+/g) ?? []) expect(help, `${line}: ${flag}`).toContain(flag);
    }
  });
});

describe("docs/architecture.md", () => {
  it("lists source directories and files that exist", () => {
    const lines = docTest("docs/architecture.md", "source-layout")
      .split("\n")
      .filter((l) => l.trim());
    let parent = "";
    for (const line of lines) {
      const name = line.trim().split(/\s+/)[0] ?? "";
      const nested = line.startsWith(" ");
      if (!nested) parent = name;
      const rel = nested ? path.join(parent, name) : name;
      expect(existsSync(path.join(REPO, rel)), `${rel} (docs/architecture.md source layout)`).toBe(true);
    }
  });
});
