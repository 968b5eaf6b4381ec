import { Counter, type Registry } from "prom-client";

/** Proxy upload counters, registered on the instance's registry (served at /metrics). */
export function createProxyUploadMetrics(registry: Registry) {
  return {
    bytesRead: new Counter({
      name: "imgup_proxy_upload_bytes_total",
      help: "Bytes read from proxy upload bodies (a refused body stops being read at the limit)",
      registers: [registry],
    }),
    uploads: new Counter({
      name: "imgup_proxy_uploads_total",
      help: "Proxy uploads by outcome: created, existing (idempotent retry) or the error code",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}

export type ProxyUploadMetrics = ReturnType<typeof createProxyUploadMetrics>;
