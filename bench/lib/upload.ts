/** The client side of an upload, as an app would do it: intent, PUT to the URL, wait for ready. */

export interface UploadTimings {
  id: string;
  /** Intent sent → image reported ready, ms. */
  totalMs: number;
}

interface IntentAnswer {
  image: { id: string };
  upload: { url: string; headers: Record<string, string> };
}

export async function uploadUntilReady(
  baseUrl: string,
  apiKey: string,
  bytes: Uint8Array<ArrayBuffer>,
  opts: { contentType: string; filename: string; sendCompleteHint?: boolean; timeoutMs?: number },
): Promise<UploadTimings> {
  const auth = { authorization: `Bearer ${apiKey}` };
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}/v1/uploads`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ filename: opts.filename, contentType: opts.contentType, size: bytes.length }),
  });
  if (res.status !== 201) throw new Error(`intent: ${res.status} ${await res.text()}`);
  const intent = (await res.json()) as IntentAnswer;
  const put = await fetch(intent.upload.url, { method: "PUT", headers: intent.upload.headers, body: bytes });
  if (put.status !== 200) throw new Error(`upload: ${put.status} ${await put.text()}`);
  // Without storage events (an S3 bucket with no notification set up) the client's hint is what starts processing.
  if (opts.sendCompleteHint) {
    const done = await fetch(`${baseUrl}/v1/uploads/${intent.image.id}/complete`, {
      method: "POST",
      headers: auth,
    });
    if (!done.ok) throw new Error(`complete: ${done.status} ${await done.text()}`);
  }
  const deadline = t0 + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const img = (await fetch(`${baseUrl}/v1/images/${intent.image.id}`, { headers: auth }).then((r) =>
      r.json(),
    )) as { status: string; rejectReason?: string };
    if (img.status === "ready") return { id: intent.image.id, totalMs: performance.now() - t0 };
    if (img.status !== "pending" && img.status !== "processing")
      throw new Error(`image ${intent.image.id} ended ${img.status} ${img.rejectReason ?? ""}`);
    if (performance.now() > deadline) throw new Error(`image ${intent.image.id} still ${img.status}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
