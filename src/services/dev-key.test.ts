import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { memoryApiKeys } from "../db/memory-api-keys.test-support.ts";
import { startupBanner } from "../logging.ts";
import { AuthService } from "./auth.ts";
import { createDevKey, demoPageLink } from "./dev-key.ts";

function captureLogger() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  return { logger, text: () => lines.join("") };
}

describe("the development key", () => {
  let dir = "";
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("is an owner key, not admin, saved 0600 and shown only when it is created", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "imgup-devkey-"));
    const config = loadConfig({ IMGUP_DATA_DIR: dir });
    const keys = memoryApiKeys();
    const auth = new AuthService(keys, null);
    const key = await createDevKey(auth, config);
    const principal = await auth.authenticate(`Bearer ${key}`);
    expect(principal.ownerId).toBe("dev");
    expect(principal.scopes.has("admin")).toBe(false);
    const file = path.join(dir, "dev-api-key");
    expect((await readFile(file, "utf8")).trim()).toBe(key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const first = captureLogger();
    startupBanner(first.logger, {
      role: "all",
      url: config.publicUrl,
      demo: demoPageLink(config, first.logger, key),
    });
    expect(first.text()).toContain(`#key=${encodeURIComponent(key)}`);

    // Every later start: the link and where the key is, never the key itself.
    const later = captureLogger();
    startupBanner(later.logger, {
      role: "all",
      url: config.publicUrl,
      demo: demoPageLink(config, later.logger, null),
    });
    expect(later.text()).toContain("demo page: http://localhost:8080/");
    expect(later.text()).toContain(file);
    expect(later.text()).not.toContain(key);
  });
});
