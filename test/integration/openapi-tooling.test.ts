import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dbTargets, type Running, startImgup } from "../support/harness.ts";
import { fetchDocument, type OpenApiDocument } from "../support/openapi.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * What client tooling makes of the document the server serves: Redocly's linter (the recommended
 * ruleset of redocly.yaml) and openapi-typescript, whose output a strict TypeScript program uses.
 */
describe("the OpenAPI document in client tooling", () => {
  let imgup: Running;
  let doc: OpenApiDocument;
  let dir: string;

  beforeAll(async () => {
    const target = dbTargets()[0];
    if (!target) throw new Error("no database target");
    imgup = await startImgup(target.make(), { IMGUP_EVENTS_TOKEN: "openapi-tooling-token-0123456789" });
    doc = await fetchDocument(imgup.baseUrl);
    dir = await mkdtemp(path.join(tmpdir(), "imgup-openapi-"));
    await writeFile(path.join(dir, "openapi.json"), JSON.stringify(doc, null, 2));
  });
  afterAll(async () => {
    await imgup?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("passes `redocly lint` with the recommended ruleset: no errors, no warnings", async () => {
    const { stdout } = await run(
      path.join(ROOT, "node_modules/.bin/redocly"),
      [
        "lint",
        "--config",
        path.join(ROOT, "redocly.yaml"),
        "--format",
        "json",
        path.join(dir, "openapi.json"),
      ],
      {
        cwd: dir,
        // No telemetry and no update check: CI's network is closed and the answer must not depend on it.
        env: {
          ...process.env,
          REDOCLY_TELEMETRY: "off",
          REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
          NO_COLOR: "1",
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const report = JSON.parse(stdout) as {
      totals: { errors: number; warnings: number };
      problems: Array<{
        ruleId: string;
        severity: string;
        message: string;
        location: Array<{ pointer: string }>;
      }>;
    };
    const listed = report.problems.map(
      (p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`,
    );
    expect(listed).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it("generates named Image and Problem types with openapi-typescript that a strict program uses", async () => {
    const generated = astToString(await openapiTS(JSON.parse(JSON.stringify(doc))));
    expect(generated).toMatch(/^\s+Image: \{$/m);
    expect(generated).toMatch(/^\s+Problem: \{$/m);
    await writeFile(path.join(dir, "imgup-api.d.ts"), generated);
    const good = `import type { components, operations, paths } from "./imgup-api.js";
type Image = components["schemas"]["Image"];
type Problem = components["schemas"]["Problem"];
type Listed = paths["/v1/images"]["get"]["responses"][200]["content"]["application/json"];
export function describe(image: Image): string {
  const reason: components["schemas"]["RejectReason"] | null = image.rejectReason;
  switch (image.status) {
    case "ready": return \`\${image.width}x\${image.height} \${image.urls?.presets.thumb ?? ""}\`;
    case "rejected": return reason ?? "rejected";
    default: return image.status;
  }
}
export const code = (p: Problem): string => p.code;
export const first = (page: Listed): Image | undefined => page.items[0];
export type NotFound =
  operations["getImage"]["responses"][404]["content"]["application/problem+json"];
`;
    // The same program with values the document does not allow: it must not compile.
    const bad = `import type { components } from "./imgup-api.js";
const status: components["schemas"]["ImageStatus"] = "uploaded";
const visibility: components["schemas"]["Visibility"] = "secret";
const reason: components["schemas"]["RejectReason"] = "too_ugly";
const size: components["schemas"]["Image"]["size"] = "10";
export { status, visibility, reason, size };
`;
    // An ES module package, as a consumer's project would be.
    await writeFile(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
    await writeFile(path.join(dir, "good.ts"), good);
    await writeFile(path.join(dir, "bad.ts"), bad);
    expect(typecheck(path.join(dir, "good.ts"))).toEqual([]);
    expect(typecheck(path.join(dir, "bad.ts"))).toHaveLength(4);
  });
});

/** tsc under the strictest settings a consumer may use, NodeNext resolution, no DOM. */
function typecheck(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    types: [],
    noEmit: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}
