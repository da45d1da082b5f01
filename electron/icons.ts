/**
 * The app and tray icons, drawn in code (so no binary assets are needed at runtime and the
 * packaged icons in build/ are reproducible: `node --import tsx build/make-icons.ts`).
 *
 * The glyph is a toll gate: a post and a horizontal boom inside a rounded square (app icon)
 * or a circle (tray), coloured by state: slate = normal, amber = warning, red = blocked.
 */
import { encodePng } from './png.ts';
import type { TrayIconState } from './tray-model.ts';

type Rgb = readonly [number, number, number];

export const STATE_COLORS: Record<TrayIconState, Rgb> = {
  normal: [51, 65, 85],
  warning: [217, 119, 6],
  blocked: [220, 38, 38],
};
const APP_COLOR: Rgb = [15, 118, 110];
const WHITE: Rgb = [255, 255, 255];

type Shape = (x: number, y: number) => boolean; // unit coordinates 0..1

function roundedSquare(r: number): Shape {
  return (x, y) => {
    const dx = Math.max(r - x, 0, x - (1 - r));
    const dy = Math.max(r - y, 0, y - (1 - r));
    return dx * dx + dy * dy <= r * r;
  };
}
const circle: Shape = (x, y) => (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25;
const rect =
  (x0: number, y0: number, x1: number, y1: number): Shape =>
  (x, y) =>
    x >= x0 && x <= x1 && y >= y0 && y <= y1;
/** The gate: a post on the left and a boom across. */
const gate: Shape = (x, y) => rect(0.24, 0.26, 0.36, 0.76)(x, y) || rect(0.24, 0.42, 0.78, 0.52)(x, y);

/** Render `size`×`size` with 4×4 supersampling for smooth edges. */
function render(size: number, background: Shape, bg: Rgb, fg: Rgb): Buffer {
  const rgba = new Uint8Array(size * size * 4);
  const ss = 4;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let cover = 0;
      let fgCover = 0;
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const x = (px + (sx + 0.5) / ss) / size;
          const y = (py + (sy + 0.5) / ss) / size;
          if (background(x, y)) {
            cover++;
            if (gate(x, y)) fgCover++;
          }
        }
      }
      const n = ss * ss;
      const i = (py * size + px) * 4;
      if (cover === 0) continue;
      const t = fgCover / cover;
      rgba[i] = Math.round(bg[0] * (1 - t) + fg[0] * t);
      rgba[i + 1] = Math.round(bg[1] * (1 - t) + fg[1] * t);
      rgba[i + 2] = Math.round(bg[2] * (1 - t) + fg[2] * t);
      rgba[i + 3] = Math.round((255 * cover) / n);
    }
  }
  return encodePng(size, size, rgba);
}

export function appIconPng(size = 1024): Buffer {
  return render(size, roundedSquare(0.22), APP_COLOR, WHITE);
}

/** Tray icon PNG; main.ts uses 16 px @1x plus 32 px @2x. */
export function trayIconPng(state: TrayIconState, size: number): Buffer {
  return render(size, circle, STATE_COLORS[state], WHITE);
}
