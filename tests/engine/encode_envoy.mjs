// Encodes sample values with the engine's own generated codec, for byte-exact tests.
// Usage: node encode_envoy.mjs PATH_TO_engine-envoy-protocol < samples.json
// Input: a JSON list of {"type": "ToRivet", "value": ...}; tagged JSON markers:
// {"$bytes": hex}, {"$big": "123"}, {"$map": [[k, v], ...]}, {"$u32": [...]}.
// Output: a JSON list of hex strings, one per sample.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const proto = await import(pathToFileURL(`${process.argv[2]}/dist/index.js`).href);

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value === null || typeof value !== "object") return value;
  if ("$bytes" in value) return Uint8Array.from(Buffer.from(value.$bytes, "hex")).buffer;
  if ("$big" in value) return BigInt(value.$big);
  if ("$map" in value) return new Map(value.$map.map(([k, v]) => [k, revive(v)]));
  if ("$u32" in value) return Uint32Array.from(value.$u32);
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = revive(v);
  return out;
}

const samples = JSON.parse(readFileSync(0, "utf8"));
const out = samples.map(({ type, value }) =>
  Buffer.from(proto[`encode${type}`](revive(value))).toString("hex"),
);
process.stdout.write(JSON.stringify(out));
