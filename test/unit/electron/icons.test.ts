import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { appIconPng, trayIconPng } from '../../../electron/icons.ts';

function readPng(png: Buffer): { width: number; height: number; pixels: Buffer } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.subarray(off + 4, off + 8).toString('ascii');
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8);
      assert.equal(data[9], 6);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  return { width, height, pixels: inflateSync(Buffer.concat(idat)) };
}

test('tray icons are valid 16/32 px RGBA PNGs, one colour per state', () => {
  const centres = new Set<string>();
  for (const state of ['normal', 'warning', 'blocked'] as const) {
    for (const size of [16, 32]) {
      const { width, height, pixels } = readPng(trayIconPng(state, size));
      assert.equal(width, size);
      assert.equal(height, size);
      assert.equal(pixels.length, (size * 4 + 1) * size);
    }
    const { pixels } = readPng(trayIconPng(state, 32));
    const row = 26 * (32 * 4 + 1) + 1; // near the bottom centre: background colour, not the gate
    centres.add(pixels.subarray(row + 16 * 4, row + 16 * 4 + 3).toString('hex'));
  }
  assert.equal(centres.size, 3);
});

test('the app icon is large enough for every platform', () => {
  const { width, height } = readPng(appIconPng(1024));
  assert.equal(width, 1024);
  assert.equal(height, 1024);
});
