import type { UppyFileLike } from "./uppy-uploads.ts";
import type { CompletedPart, UploadedPart } from "./wire.ts";

/** @uppy/aws-s3 v6's request to sign (its PresignableRequest). */
export interface PresignableRequest {
  method: "PUT" | "POST" | "GET" | "DELETE";
  key: string;
  uploadId?: string;
  partNumber?: number;
  contentType?: string;
  expiresIn?: number;
}

/** @uppy/aws-s3 v6's answer: the URL it sends the request to (its PresignedResponse). */
export interface PresignedResponse {
  url: string;
  key?: string;
  headers?: Record<string, string>;
  fields?: Record<string, string>;
}

export type SignRequest = (request: PresignableRequest) => Promise<PresignedResponse>;

/** What the signer does through imgup's API. */
export interface SignOperations {
  fileOf(key: string): UppyFileLike;
  /** A presigned PUT (headers) or form POST (fields); `key` is the image id. */
  single(
    file: UppyFileLike,
  ): Promise<{ url: string; key: string; headers?: Record<string, string>; fields?: Record<string, string> }>;
  createMultipart(file: UppyFileLike): Promise<{ uploadId: string; key: string }>;
  partUrl(imageId: string, partNumber: number): Promise<string>;
  /** null when the upload is no longer pending (completed by an earlier attempt). */
  uploadedParts(imageId: string): Promise<UploadedPart[] | null>;
  complete(imageId: string, parts: CompletedPart[]): Promise<void>;
  abort(imageId: string): Promise<void>;
  location(imageId: string): string;
}

/**
 * @uppy/aws-s3 v6 signs every S3 request through one function and then sends it itself. Object
 * and part uploads get imgup's presigned storage URLs. The multipart control requests (create,
 * list parts, complete, abort) are imgup API calls instead: the signer makes that call and hands
 * Uppy a `data:` URL holding the XML answer S3 would have given (XHR reads a data: URL with any
 * method; a page's CSP must allow `connect-src data:`).
 */
export function signRequestFor(ops: SignOperations): SignRequest {
  return async (request) => {
    const { method, key, uploadId } = request;
    if (uploadId === undefined) {
      if (method === "PUT") {
        const single = await ops.single(ops.fileOf(key));
        // A form's `key` field is the object key, which Uppy then reports; a PUT reports the image id.
        if (single.fields) return { url: single.url, fields: single.fields };
        return { url: single.url, key: single.key, ...(single.headers ? { headers: single.headers } : {}) };
      }
      if (method === "POST") {
        const created = await ops.createMultipart(ops.fileOf(key));
        const xml = element("InitiateMultipartUploadResult", [
          element("Bucket", "imgup"),
          element("Key", created.key),
          element("UploadId", created.uploadId),
        ]);
        return { url: xmlDataUrl(xml), key: created.key };
      }
      throw new TypeError(`imgup's Uppy adapter does not sign ${method} of an object`);
    }
    if (method === "PUT" && request.partNumber !== undefined) {
      return { url: await ops.partUrl(key, request.partNumber) };
    }
    if (method === "GET") {
      const parts = (await ops.uploadedParts(key)) ?? [];
      return { url: xmlDataUrl(listPartsXml(key, uploadId, parts)) };
    }
    if (method === "POST") {
      const parts = await ops.uploadedParts(key);
      if (parts)
        await ops.complete(
          key,
          parts.map(({ partNumber, etag }) => ({ partNumber, etag })),
        );
      const xml = element("CompleteMultipartUploadResult", [
        element("Location", ops.location(key)),
        element("Bucket", "imgup"),
        element("Key", key),
      ]);
      return { url: xmlDataUrl(xml) };
    }
    if (method === "DELETE") {
      await ops.abort(key);
      return { url: xmlDataUrl("") };
    }
    throw new TypeError(`imgup's Uppy adapter cannot sign ${method} with an uploadId`);
  };
}

function listPartsXml(key: string, uploadId: string, parts: UploadedPart[]): string {
  return element("ListPartsResult", [
    element("Bucket", "imgup"),
    element("Key", key),
    element("UploadId", uploadId),
    ...parts.map((p) =>
      element("Part", [
        element("PartNumber", String(p.partNumber)),
        element("ETag", p.etag),
        element("Size", String(p.size)),
      ]),
    ),
  ]);
}

function element(name: string, content: string | string[]): string {
  const inner = Array.isArray(content) ? content.join("") : escapeXml(content);
  return `<${name}>${inner}</${name}>`;
}

const ENTITIES: Record<string, string> = {
  "<": "&lt;",
  ">": "&gt;",
  "&": "&amp;",
  '"': "&quot;",
  "'": "&apos;",
};

/** Named entities only: Uppy's XML reader decodes no others. */
function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ENTITIES[c] ?? c);
}

export function xmlDataUrl(xml: string): string {
  return `data:application/xml;charset=utf-8,${encodeURIComponent(xml)}`;
}
