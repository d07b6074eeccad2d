// Writes the app's icons (public/icons/*.png): the brand's red cross on a red rounded square, and a
// full-bleed "maskable" variant whose cross sits inside the 80% safe zone a launcher may crop to.
// No image library and no network: PNG is zlib-compressed RGBA rows with a CRC per chunk.
// Run: node scripts/make-icons.mjs (the PNGs are committed; run again only to change them).
import { writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const RED = [0xb3, 0x26, 0x1e, 0xff];
const WHITE = [0xff, 0xff, 0xff, 0xff];
const CLEAR = [0, 0, 0, 0];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function png(size, pixel) {
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) rows.set(pixel(x + 0.5, y + 0.5), y * (size * 4 + 1) + 1 + x * 4);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// The favicon's drawing (index.html), scaled: a 16-unit square, the cross's arms 3 units wide.
function inCross(u, v) {
  return (u >= 6.5 && u <= 9.5 && v >= 3 && v <= 13) || (v >= 6.5 && v <= 9.5 && u >= 3 && u <= 13);
}

function inRoundedSquare(u, v, radius) {
  const cx = Math.min(Math.max(u, radius), 16 - radius);
  const cy = Math.min(Math.max(v, radius), 16 - radius);
  return (u - cx) ** 2 + (v - cy) ** 2 <= radius ** 2;
}

function icon(size) {
  return png(size, (x, y) => {
    const [u, v] = [(x / size) * 16, (y / size) * 16];
    if (!inRoundedSquare(u, v, 3)) return CLEAR;
    return inCross(u, v) ? WHITE : RED;
  });
}

// Maskable: the whole square is background; the cross shrunk to 60% around the centre.
function maskable(size) {
  return png(size, (x, y) => {
    const [u, v] = [8 + ((x / size) * 16 - 8) / 0.6, 8 + ((y / size) * 16 - 8) / 0.6];
    return inCross(u, v) ? WHITE : RED;
  });
}

const out = new URL("../public/icons/", import.meta.url);
writeFileSync(new URL("icon-192.png", out), icon(192));
writeFileSync(new URL("icon-512.png", out), icon(512));
writeFileSync(new URL("icon-maskable-512.png", out), maskable(512));
