import { Counter, Gauge, type Registry } from "prom-client";

/** AMQP event source metrics, registered on the instance's registry (served at /metrics). */
export function createAmqpEventMetrics(registry: Registry) {
  return {
    messages: new Counter({
      name: "imgup_amqp_event_messages_total",
      help: "Storage event messages consumed from AMQP by outcome: handled (acked), dead_lettered (unreadable, moved to the dead-letter queue) or requeued (recording failed)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    connected: new Gauge({
      name: "imgup_amqp_connected",
      help: "1 while the AMQP event source is connected and consuming, else 0",
      registers: [registry],
    }),
  };
}

export type AmqpEventMetrics = ReturnType<typeof createAmqpEventMetrics>;
