// gRPC-web for the console, by hand: protobuf encoding and decoding driven by schema.js (generated
// from proto/ by src/console/schema.rs), and calls over fetch to the same origin
// (application/grpc-web+proto). Unary calls and server streams only, as browsers allow.
//
// Messages are plain objects with the proto's field names (snake_case); int64 fields are
// Numbers (exact up to 2^53: milliseconds since 1970 fit); enums are numbers (see `enums`);
// maps are plain objects; an unset oneof member or proto3 `optional` field is absent (undefined),
// and one that is set is sent even when zero.
import { messages, enums } from "./schema.js";

export { enums };

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

// ---------- encoding ----------
class Writer {
  constructor() { this.bytes = []; }
  varint(n) {
    // n: a non-negative Number below 2^53, or a negative int (written as 64-bit two's complement).
    if (n < 0) {
      let big = BigInt.asUintN(64, BigInt(n));
      while (big > 0x7fn) { this.bytes.push(Number(big & 0x7fn) | 0x80); big >>= 7n; }
      this.bytes.push(Number(big));
      return;
    }
    while (n > 0x7f) { this.bytes.push((n % 128) | 0x80); n = Math.floor(n / 128); }
    this.bytes.push(n);
  }
  tag(number, wire) { this.varint(number * 8 + wire); }
  raw(b) { for (const x of b) this.bytes.push(x); }
  result() { return Uint8Array.from(this.bytes); }
}

const VARINT_TYPES = new Set(["int32", "int64", "uint32", "uint64", "bool", "enum", "sint32", "sint64"]);

function encodeScalar(w, type, number, value) {
  switch (type) {
    case "string": { const b = utf8.encode(value); w.tag(number, 2); w.varint(b.length); w.raw(b); return; }
    case "bytes": { w.tag(number, 2); w.varint(value.length); w.raw(value); return; }
    case "bool": w.tag(number, 0); w.varint(value ? 1 : 0); return;
    case "double": { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, value, true); w.tag(number, 1); w.raw(b); return; }
    case "float": { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, value, true); w.tag(number, 5); w.raw(b); return; }
    default:
      if (VARINT_TYPES.has(type)) { w.tag(number, 0); w.varint(Number(value)); return; }
      throw new Error("unsupported protobuf type " + type);
  }
}

function isDefault(type, v) {
  return v === undefined || v === null || v === "" || v === 0 || v === false;
}

/** Encodes `value` (a plain object) as the message `name` ("guichet.v1.LoginRequest"). */
export function encode(name, value) {
  const w = new Writer();
  encodeInto(w, name, value || {});
  return w.result();
}

function encodeInto(w, name, value) {
  const desc = messages[name];
  if (!desc) throw new Error("unknown message " + name);
  for (const [number, field, type, repeated, typeName, oneof] of desc.fields) {
    const v = value[field];
    if (v === undefined || v === null) continue;
    if (type === "message") {
      const entry = messages[typeName];
      if (entry && entry.map) {
        for (const [k, mv] of Object.entries(v)) {
          const sub = new Writer();
          encodeInto(sub, typeName, { key: k, value: mv });
          const b = sub.result();
          w.tag(number, 2); w.varint(b.length); w.raw(b);
        }
        continue;
      }
      for (const item of repeated ? v : [v]) {
        const sub = new Writer();
        encodeInto(sub, typeName, item);
        const b = sub.result();
        w.tag(number, 2); w.varint(b.length); w.raw(b);
      }
      continue;
    }
    if (repeated) { for (const item of v) encodeScalar(w, type, number, item); continue; }
    if (oneof === null && isDefault(type, v)) continue;
    encodeScalar(w, type, number, v);
  }
}

// ---------- decoding ----------
class Reader {
  constructor(bytes) { this.b = bytes; this.i = 0; }
  done() { return this.i >= this.b.length; }
  varint() {
    let result = 0, mul = 1, byte;
    do {
      if (this.i >= this.b.length) throw new Error("truncated varint");
      byte = this.b[this.i++];
      result += (byte & 0x7f) * mul;
      mul *= 128;
    } while (byte & 0x80);
    return result;
  }
  bytes(n) {
    if (this.i + n > this.b.length) throw new Error("truncated field");
    const out = this.b.subarray(this.i, this.i + n); this.i += n; return out;
  }
  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.bytes(8);
    else if (wire === 2) this.bytes(this.varint());
    else if (wire === 5) this.bytes(4);
    else throw new Error("unsupported wire type " + wire);
  }
}

function toSigned64(n) {
  // Varints of negative int64 come as 10 bytes: beyond 2^63, read as negative.
  return n >= 2 ** 63 ? n - 2 ** 64 : n;
}

function decodeScalar(r, type, wire) {
  switch (type) {
    case "string": return fromUtf8.decode(r.bytes(r.varint()));
    case "bytes": return r.bytes(r.varint()).slice();
    case "bool": return r.varint() !== 0;
    case "double": return new DataView(r.bytes(8).slice().buffer).getFloat64(0, true);
    case "float": return new DataView(r.bytes(4).slice().buffer).getFloat32(0, true);
    case "int64": case "int32": return toSigned64(r.varint());
    default:
      if (VARINT_TYPES.has(type)) return r.varint();
      r.skip(wire); return undefined;
  }
}

function defaults(desc) {
  const out = {};
  for (const [, field, type, repeated, typeName, oneof] of desc.fields) {
    if (oneof !== null) continue;
    if (repeated) out[field] = [];
    else if (type === "message") out[field] = (messages[typeName] && messages[typeName].map) ? {} : null;
    else if (type === "string") out[field] = "";
    else if (type === "bool") out[field] = false;
    else if (type === "bytes") out[field] = new Uint8Array(0);
    else out[field] = 0;
  }
  return out;
}

/** Decodes the bytes of message `name` into a plain object (defaults filled in). */
export function decode(name, bytes) {
  const desc = messages[name];
  if (!desc) throw new Error("unknown message " + name);
  const out = defaults(desc);
  const byNumber = new Map(desc.fields.map((f) => [f[0], f]));
  const r = new Reader(bytes);
  while (!r.done()) {
    const key = r.varint();
    const number = Math.floor(key / 8), wire = key % 8;
    const f = byNumber.get(number);
    if (!f) { r.skip(wire); continue; }
    const [, field, type, repeated, typeName, oneof] = f;
    if (type === "message") {
      const sub = decode(typeName, r.bytes(r.varint()));
      const entry = messages[typeName];
      if (entry && entry.map) out[field][sub.key] = sub.value;
      else if (repeated) out[field].push(sub);
      else out[field] = sub;
    } else if (repeated && wire === 2 && type !== "string" && type !== "bytes") {
      const packed = new Reader(r.bytes(r.varint()));
      while (!packed.done()) out[field].push(decodeScalar(packed, type, 0));
    } else {
      const v = decodeScalar(r, type, wire);
      if (repeated) out[field].push(v); else out[field] = v;
    }
    if (oneof !== null) out[oneof] = field;
  }
  return out;
}

// ---------- gRPC-web ----------
/** A gRPC status other than OK: `code` (number), `message` (the server's text). */
export class GrpcError extends Error {
  constructor(code, message) { super(message || "gRPC status " + code); this.code = code; }
}

export const Code = { OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13,
  UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16 };

function frame(bytes) {
  const out = new Uint8Array(5 + bytes.length);
  new DataView(out.buffer).setUint32(1, bytes.length);
  out.set(bytes, 5);
  return out;
}

function parseTrailers(text) {
  const t = {};
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) t[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return t;
}

function statusOf(fields) {
  const code = Number(fields["grpc-status"] || 0);
  let message = fields["grpc-message"] || "";
  try { message = decodeURIComponent(message); } catch (_) { /* shown as sent */ }
  return code === 0 ? null : new GrpcError(code, message);
}

// Splits the frames of `buffer`; returns [frames, rest].
function frames(buffer) {
  const out = [];
  let i = 0;
  while (buffer.length - i >= 5) {
    const len = new DataView(buffer.buffer, buffer.byteOffset + i + 1, 4).getUint32(0);
    if (buffer.length - i - 5 < len) break;
    out.push({ flag: buffer[i], data: buffer.subarray(i + 5, i + 5 + len) });
    i += 5 + len;
  }
  return [out, buffer.subarray(i)];
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length); out.set(a); out.set(b, a.length); return out;
}

async function post(path, requestType, request, headers, signal) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: Object.assign({ "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, headers),
      body: frame(encode(requestType, request)),
      signal,
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new GrpcError(Code.UNAVAILABLE, "");
  }
  if (!response.ok) throw new GrpcError(Code.UNAVAILABLE, "HTTP " + response.status);
  const headerStatus = statusOf({ "grpc-status": response.headers.get("grpc-status"),
    "grpc-message": response.headers.get("grpc-message") });
  if (headerStatus) throw headerStatus;
  return response;
}

/**
 * A unary call: `method` is "/guichet.v1.AgentDesktop/Login"; resolves with the decoded answer
 * or rejects with a GrpcError.
 */
export async function unary(method, requestType, responseType, request, headers) {
  const response = await post(method, requestType, request, headers);
  const body = new Uint8Array(await response.arrayBuffer());
  const [parts] = frames(body);
  let message = null, trailers = {};
  for (const p of parts) {
    if (p.flag & 0x80) trailers = parseTrailers(fromUtf8.decode(p.data));
    else message = decode(responseType, p.data);
  }
  const status = statusOf(trailers);
  if (status) throw status;
  if (message === null) throw new GrpcError(Code.INTERNAL, "empty answer");
  return message;
}

/**
 * A server stream: calls `onMessage(decoded)` for each message; resolves when the stream ends
 * well, rejects with a GrpcError otherwise. `signal` (an AbortSignal) closes it.
 */
export async function serverStream(method, requestType, responseType, request, headers, onMessage, signal) {
  const response = await post(method, requestType, request, headers, signal);
  const reader = response.body.getReader();
  let buffer = new Uint8Array(0);
  let trailers = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = concat(buffer, value);
    const [parts, rest] = frames(buffer);
    buffer = rest.slice();
    for (const p of parts) {
      if (p.flag & 0x80) trailers = parseTrailers(fromUtf8.decode(p.data));
      else onMessage(decode(responseType, p.data));
    }
  }
  const status = statusOf(trailers || {});
  if (status) throw status;
}
