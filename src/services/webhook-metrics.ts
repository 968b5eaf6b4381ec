import { Counter, Gauge, type Registry } from "prom-client";

/** Webhook and outbox metrics, on the instance's registry (served at /metrics). */
export function createWebhookMetrics(
  registry: Registry,
  read: {
    /** Seconds since the oldest event the fan-out has not reached. */
    outboxLag: () => Promise<number>;
    backlog: () => Promise<{ pending: number; oldestDueSeconds: number }>;
  },
) {
  return {
    deliveries: new Counter({
      name: "imgup_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome: delivered, retrying (failed, tried again later), failed (given up)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    disabled: new Counter({
      name: "imgup_webhook_endpoints_disabled_total",
      help: "Endpoints disabled after sustained failure",
      registers: [registry],
    }),
    outboxLag: new Gauge({
      name: "imgup_outbox_lag_seconds",
      help: "Age of the oldest app event not yet fanned out to webhook endpoints (NaN when the database did not answer)",
      registers: [registry],
      async collect() {
        this.set(await read.outboxLag().catch(() => Number.NaN));
      },
    }),
    pending: new Gauge({
      name: "imgup_webhook_deliveries_pending",
      help: "Webhook deliveries waiting for an attempt or a retry",
      registers: [registry],
      async collect() {
        this.set((await read.backlog().catch(() => null))?.pending ?? Number.NaN);
      },
    }),
    oldestDue: new Gauge({
      name: "imgup_webhook_oldest_due_seconds",
      help: "How long the oldest due webhook delivery has waited past its attempt time",
      registers: [registry],
      async collect() {
        this.set((await read.backlog().catch(() => null))?.oldestDueSeconds ?? Number.NaN);
      },
    }),
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
