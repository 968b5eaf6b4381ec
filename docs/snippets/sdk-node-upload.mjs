// node upload.mjs photo.jpg   (IMGUP_URL=https://imgup.example IMGUP_API_KEY=...)
import { openAsBlob } from "node:fs";
import { extname } from "node:path";
import { createClient } from "@imgup/client";

const types = { ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp" };
const path = process.argv[2];
const client = createClient({ baseUrl: process.env.IMGUP_URL, token: process.env.IMGUP_API_KEY });

// fs.openAsBlob streams from disk: a large file is never read into memory at once.
const file = await openAsBlob(path, { type: types[extname(path).toLowerCase()] });
const { image, deduplicated } = await client.upload(file, { filename: path.split("/").pop() });
console.log(JSON.stringify({ id: image.id, status: image.status, width: image.width, deduplicated }));
