// Shared by the GGUF tests that drive llama.cpp from node: ok/FAIL lines with a count, and .npy files for mitten
// logits (int64 ids in, f32 logits or int64 greedy tokens out).

import fs from "node:fs";

export let failed = 0;
export function check(label, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${label}${ok || !detail ? "" : ": " + detail}`);
  if (!ok) failed++;
}

// int64 ids as .npy for mitten logits
export function writeIds(file, ids) {
  let header = `{'descr': '<i8', 'fortran_order': False, 'shape': (${ids.length},), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(8 * ids.length);
  ids.forEach((v, i) => body.writeBigInt64LE(BigInt(v), 8 * i));
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, "latin1"), body]));
}

export function readNpy(file) {
  const buf = fs.readFileSync(file);
  const hlen = buf.readUInt16LE(8);
  const header = buf.toString("latin1", 10, 10 + hlen);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(",").filter((s) => s.trim()).map(Number);
  const descr = header.match(/'descr': '([^']*)'/)[1];
  const data = buf.subarray(10 + hlen);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Array(n);
  for (let i = 0; i < n; i++)
    out[i] = descr === "<f4" ? data.readFloatLE(4 * i) : Number(data.readBigInt64LE(8 * i));
  return {shape, data: out};
}
