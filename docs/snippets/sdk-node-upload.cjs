// node upload.cjs photo.png   (CommonJS: require works too)
const { openAsBlob } = require("node:fs");
const { createClient, ImgupError } = require("@imgup/client");

async function main() {
  const client = createClient({ baseUrl: process.env.IMGUP_URL, token: process.env.IMGUP_API_KEY });
  const file = await openAsBlob(process.argv[2], { type: "image/png" });
  // dedup: false: these bytes become a new image even if this owner uploaded them before.
  const { image, deduplicated } = await client.upload(file, { dedup: false, visibility: "private" });
  console.log(JSON.stringify({ id: image.id, status: image.status, width: image.width, deduplicated }));
}

main().catch((err) => {
  console.error(err instanceof ImgupError ? `${err.status} ${err.code}: ${err.detail}` : err);
  process.exitCode = 1;
});
