/**
 * Regenerates the packaging icons from electron/icons.ts (the same drawing the tray uses):
 *   node --import tsx build/make-icons.ts
 * electron-builder derives .icns/.ico and Linux sizes from build/icon.png (1024 px).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { appIconPng } from '../electron/icons.ts';

const dir = fileURLToPath(new URL('.', import.meta.url));
fs.writeFileSync(`${dir}icon.png`, appIconPng(1024));
fs.mkdirSync(`${dir}icons`, { recursive: true });
for (const size of [16, 32, 48, 64, 128, 256, 512]) fs.writeFileSync(`${dir}icons/${size}x${size}.png`, appIconPng(size));
console.log(`wrote ${dir}icon.png and ${dir}icons/*.png`);
