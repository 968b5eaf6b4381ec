import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DROPPED_DEFAULT_METRICS } from "../../src/metrics.ts";
import { Api } from "../support/api.ts";
import { makeImage } from "../support/fixtures.ts";
import { type Running, startImgup } from "../support/harness.ts";
import { checkMetrics, promtool, promtoolPath } from "../support/promtool.ts";

const DEPLOY = path.resolve(import.meta.dirname, "../../deploy/prometheus");
const installed = promtoolPath();

/** The example scrape configuration and alert rules in deploy/prometheus, as Prometheus reads them. */
describe.skipIf(!installed)("deploy/prometheus passes promtool", () => {
  it("check config: prometheus.yml and the rule file it names", async () => {
    const { code, output } = await promtool(["check", "config", "prometheus.yml"], undefined, DEPLOY);
    expect(output).toMatch(/SUCCESS: 6 rules found/);
    expect(code, output).toBe(0);
  });

  it("check rules: the six alerts, on metrics imgup exports", async () => {
    const { code, output } = await promtool(["check", "rules", "alerts.yml"], undefined, DEPLOY);
    expect(code, output).toBe(0);
    expect(output).toMatch(/SUCCESS: 6 rules found/);
  });

  it("test rules: the breaker, backlog, events-not-arriving and dead-letter alerts fire when they should, and not before", async () => {
    const { code, output } = await promtool(["test", "rules", "alerts.test.yml"], undefined, DEPLOY);
    expect(code, output).toBe(0);
  });
});

/** Every metric an embedded imgup exports after processing an upload, as `promtool check metrics` lints them. */
describe.skipIf(!installed)("promtool check metrics on an embedded imgup's /metrics", () => {
  let run: Running;

  beforeAll(async () => {
    // Embedded (PGlite, local storage): every metric is registered whatever the backends.
    run = await startImgup({ name: "pglite", env: {}, cleanup: async () => {} });
    const alice = new Api(run.baseUrl, run.alice);
    const { intent, put } = await alice.uploadBytes(await makeImage("jpeg", 64, 48), {
      filename: "m.jpg",
      contentType: "image/jpeg",
    });
    expect(put.status).toBe(200);
    expect((await alice.settled(intent.image.id)).status).toBe("ready");
    // A variant and a 404, so the transform and HTTP series have samples too.
    await fetch(`${run.baseUrl}/i/${intent.image.id}/w_20`);
    await fetch(`${run.baseUrl}/no-such-route`);
  });

  afterAll(async () => {
    await run?.stop();
  });

  it("passes, with the processing metrics present and the dropped *_total gauges gone", async () => {
    const body = await (await fetch(`${run.baseUrl}/metrics`)).text();
    expect(body).toMatch(/^imgup_images_finalized_total\{status="ready",reason=""\} 1$/m);
    expect(body).toMatch(/^imgup_processing_duration_seconds_count\{outcome="ready"\} 1$/m);
    expect(body).toMatch(/^imgup_images_pending_lapsed_seconds 0$/m);
    // The outage buffer and the pipeline check: nothing buffered, no check has flagged anything.
    expect(body).toMatch(/^imgup_buffer_entries 0$/m);
    expect(body).toMatch(/^imgup_buffer_dead_letters 0$/m);
    expect(body).toMatch(/^imgup_images_pending_with_object 0$/m);
    expect(body).toMatch(/^imgup_images_pending_with_object_oldest_seconds 0$/m);
    expect(body).toMatch(/^nodejs_active_handles\{/m);
    for (const name of DROPPED_DEFAULT_METRICS) expect(body).not.toContain(`${name} `);
    const { code, output } = await checkMetrics(body);
    expect(output).toBe("");
    expect(code).toBe(0);
  });

  it("fails on what it should: a gauge named *_total (the check is live)", async () => {
    const bad = "# HELP x_things_total Things.\n# TYPE x_things_total gauge\nx_things_total 1\n";
    const { code, output } = await checkMetrics(bad);
    expect(code).not.toBe(0);
    expect(output).toMatch(/non-counter metrics should not have "_total" suffix/);
  });
});
