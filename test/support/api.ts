import { createHash } from "node:crypto";
import { eventually } from "./harness.ts";

export interface HttpResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** A thin client over the real HTTP API, the way a user's code would call it. */
export class Api {
  constructor(
    readonly baseUrl: string,
    readonly key?: string,
  ) {}

  as(key: string): Api {
    return new Api(this.baseUrl, key);
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: { json?: unknown; headers?: Record<string, string>; body?: RequestInit["body"] } = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["content-type"] ??= "application/json";
      body = JSON.stringify(opts.json);
    }
    const res = await fetch(path.startsWith("http") ? path : `${this.baseUrl}${path}`, {
      method,
      headers,
      body,
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get("content-type") ?? "").includes("json") && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  createIntent(body: Record<string, unknown>, headers?: Record<string, string>) {
    return this.request<IntentResponse>("POST", "/v1/uploads", { json: body, headers });
  }

  getImage(id: string) {
    return this.request<ImageJson>("GET", `/v1/images/${id}`);
  }

  /** Waits until the image leaves pending/processing (generous: processing on a loaded machine is slow). */
  async settled(id: string, timeoutMs = 120_000): Promise<ImageJson> {
    return eventually(async () => {
      const r = await this.getImage(id);
      return r.status === 200 && !["pending", "processing"].includes(r.body.status) ? r.body : undefined;
    }, timeoutMs);
  }

  /** Intent, then PUT the bytes exactly as instructed; returns the intent and the storage's answer. */
  async uploadBytes(bytes: Buffer, intent: Record<string, unknown>) {
    const created = await this.createIntent({ size: bytes.length, ...intent });
    if (created.status !== 201)
      throw new Error(`intent failed: ${created.status} ${JSON.stringify(created.body)}`);
    const put = await putTo(created.body.upload, bytes);
    return { intent: created.body, put };
  }
}

export async function putTo(
  upload: IntentResponse["upload"],
  bytes: Buffer,
  overrideHeaders: Record<string, string> = {},
  url = upload.url,
) {
  const headers = new Headers(upload.headers);
  for (const [name, value] of Object.entries(overrideHeaders)) headers.set(name, value);
  const res = await fetch(url, { method: "PUT", headers, body: new Uint8Array(bytes) });
  const text = await res.text();
  return { status: res.status, body: text, headers: res.headers };
}

export function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export interface ImageJson {
  id: string;
  status: string;
  visibility: string;
  filename: string;
  contentType: string | null;
  size: number | null;
  width: number | null;
  height: number | null;
  format: string | null;
  sha256: string | null;
  rejectReason: string | null;
  rejectDetail: string | null;
  urls: { original: string; source: string; presets: Record<string, string> } | null;
  placeholder?: string | null;
  [k: string]: unknown;
}

export interface IntentResponse {
  image: ImageJson;
  upload: {
    method: string;
    url: string;
    headers?: Record<string, string>;
    fields?: Record<string, string>;
    expiresAt: string;
  };
  code?: string;
}

/** Puts one part to its presigned URL; returns the ETag the storage answered with. */
export async function putPart(url: string, body: Buffer): Promise<string> {
  const res = await fetch(url, { method: "PUT", body: new Uint8Array(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`part upload failed: ${res.status} ${text}`);
  const etag = res.headers.get("etag");
  if (!etag) throw new Error("the storage returned no ETag (is it exposed by CORS?)");
  return etag;
}

export interface MultipartUpload {
  method: "multipart";
  uploadId: string;
  partSize: number;
  partCount: number;
  parts: { partNumber: number; url: string }[];
}

export function partBytes(bytes: Buffer, upload: { partSize: number }, partNumber: number): Buffer {
  return bytes.subarray((partNumber - 1) * upload.partSize, partNumber * upload.partSize);
}
