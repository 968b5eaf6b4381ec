import { createClient } from "../client.ts";
import { ImgupError } from "../errors.ts";
import { check, equal, FIXTURES, plainClient, rejection, type ScenarioContext } from "./support.ts";

async function bytesOf(
  ctx: ScenarioContext,
  url: string,
): Promise<{ status: number; type: string | null; blob: Blob }> {
  const res = await ctx.fetch(url);
  return { status: res.status, type: res.headers.get("content-type"), blob: await res.blob() };
}

async function sameBytes(a: Blob, b: Blob): Promise<boolean> {
  const [x, y] = [new Uint8Array(await a.arrayBuffer()), new Uint8Array(await b.arrayBuffer())];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const codeOf = (err: unknown) => (err instanceof ImgupError ? `${err.status} ${err.code}` : String(err));

/** get, list, url (original, preset, signed spec), visibility, another owner, delete. */
export async function imagesCanBeReadChangedAndDeleted(ctx: ScenarioContext): Promise<void> {
  const client = plainClient(ctx);
  const file = await ctx.file("jpeg");
  const { image } = await client.upload(file, { filename: "kept.jpg" });
  equal((await client.getImage(image.id)).id, image.id, "getImage");
  const page = await client.listImages({ limit: 100 });
  check(
    page.items.some((i) => i.id === image.id),
    "listImages has it",
  );

  const original = await bytesOf(ctx, await client.url(image));
  check(
    original.status === 200 && (await sameBytes(original.blob, file)),
    "the original URL serves the bytes",
  );
  const thumb = await bytesOf(ctx, await client.url(image, "thumb"));
  equal([thumb.status, thumb.type], [200, "image/webp"], "the thumb preset");
  const specUrl = await client.url(image, "w_32,h_24,fit_cover,f_png");
  const variant = await bytesOf(ctx, specUrl);
  equal(variant.status, 200, "the signed variant's status");
  equal(await ctx.probe(variant.blob), { width: 32, height: 24 }, "the variant's dimensions");
  equal(
    codeOf(await rejection(() => client.url(image, "w_0"), "a bad spec")),
    "400 invalid_spec",
    "a bad spec",
  );

  const hidden = await client.setVisibility(image.id, "private");
  equal(hidden.visibility, "private", "setVisibility");
  equal((await ctx.fetch(image.urls?.original ?? "")).status, 404, "the public URL of a private image");
  const signedOriginal = await client.url(hidden);
  check(signedOriginal.includes("sig="), "a private original URL is signed");
  equal((await bytesOf(ctx, signedOriginal)).status, 200, "the signed private original");
  const privateVariantUrl = await client.url(hidden, "w_16,f_png");
  check(
    privateVariantUrl.includes("exp=") && privateVariantUrl.includes("sig="),
    "a private variant URL is signed",
  );
  const privateVariant = await bytesOf(ctx, privateVariantUrl);
  equal(privateVariant.status, 200, "the signed private variant");
  const expected = Math.round((16 * FIXTURES.jpeg.height) / FIXTURES.jpeg.width);
  equal(
    await ctx.probe(privateVariant.blob),
    { width: 16, height: expected },
    "the private variant's dimensions",
  );
  equal((await ctx.fetch(privateVariantUrl.split("?")[0] ?? "")).status, 404, "the variant without exp/sig");

  const bob = createClient({ baseUrl: ctx.baseUrl, token: ctx.otherToken });
  equal(
    codeOf(await rejection(() => bob.getImage(image.id), "bob's get")),
    "404 image_not_found",
    "bob's get",
  );
  equal(
    codeOf(await rejection(() => bob.url(image, "w_10"), "bob's url")),
    "404 image_not_found",
    "bob's signed URL",
  );

  await client.deleteImage(image.id);
  equal(
    codeOf(await rejection(() => client.getImage(image.id), "get after delete")),
    "404 image_not_found",
    "deleted",
  );
  check(
    !(await client.listImages({ limit: 100 })).items.some((i) => i.id === image.id),
    "not listed after delete",
  );
}
