/**
 * The HLS rendition ladder derived from a source (issue 20). Pure. Rungs are named by their short
 * side ("720p" is 1280×720 landscape or 720×1280 portrait) and never exceed the source.
 */
export interface Rung {
  /** Directory name in the HLS tree and in storage keys: `^[0-9]{2,4}p$`. */
  name: string;
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
  /** VBV: peaks the player must absorb stay bounded (HLS BANDWIDTH is the peak). */
  maxrateKbps: number;
  bufsizeKbps: number;
  /** 0 when the source has no audio. */
  audioKbps: number;
}

export interface LadderOptions {
  /** Short sides of the standard rungs, largest first. */
  shortSides: readonly number[];
  /** Frame rates above this are capped to it (an fps filter drops frames). */
  maxFps: number;
  /** Bits per pixel per frame of the H.264 target; 0.075 gives ~4.7 Mbit/s at 1080p30. */
  bitsPerPixel: number;
  minVideoKbps: number;
}

export const DEFAULT_LADDER: LadderOptions = {
  shortSides: [1080, 720, 480, 240],
  maxFps: 60,
  bitsPerPixel: 0.075,
  minVideoKbps: 200,
};

export interface LadderSource {
  /** As displayed (rotation applied). */
  width: number;
  height: number;
  fps: number;
  hasAudio: boolean;
}

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
const evenDown = (n: number) => Math.max(2, Math.floor(n / 2) * 2);

/**
 * The source's own size (capped at the top rung) first, then every standard rung below it. A
 * 640×360 source gives 360p and 240p; a 4K one 1080p, 720p, 480p, 240p; nothing is upscaled.
 */
export function renditionLadder(src: LadderSource, opts: LadderOptions = DEFAULT_LADDER): Rung[] {
  const landscape = src.width >= src.height;
  const srcShort = landscape ? src.height : src.width;
  const srcLong = landscape ? src.width : src.height;
  const top = Math.min(evenDown(srcShort), Math.max(...opts.shortSides));
  const sides = [top, ...opts.shortSides.filter((s) => s < top)];
  const fps = Math.min(src.fps, opts.maxFps);
  return sides.map((short, i) => {
    // The long side keeps the aspect ratio, rounded to even (4:2:0 chroma needs even sizes) and
    // never past the source's (rounding up 1 pixel is still an upscale).
    const long = Math.min(evenDown(srcLong), even((srcLong * short) / srcShort));
    const width = landscape ? long : short;
    const height = landscape ? short : long;
    const videoKbps = Math.max(
      opts.minVideoKbps,
      Math.round((width * height * Math.min(fps, 60) * opts.bitsPerPixel) / 1000),
    );
    return {
      name: `${short}p`,
      width,
      height,
      fps: roundFps(fps),
      videoKbps,
      maxrateKbps: Math.round(videoKbps * 1.1),
      bufsizeKbps: videoKbps * 2,
      audioKbps: !src.hasAudio ? 0 : i === 0 && short >= 720 ? 128 : short > 240 ? 96 : 64,
    };
  });
}

const roundFps = (fps: number) => Math.round(fps * 1000) / 1000;

/** True for a rung directory name the ladder can produce (storage keys and delivery routes check it). */
export function isRungName(value: string): boolean {
  return /^[1-9][0-9]{1,3}p$/.test(value);
}
