/**
 * A minimal writer of the ONNX protobuf (onnx.proto3 field numbers): enough to build small graphs
 * from code, e.g. the tiny BERT-shaped graph the tests and the bench run through onnxruntime.
 */

class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.parts.push(Uint8Array.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.parts.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(value.length));
    this.parts.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const total = this.parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export const FLOAT = 1;
export const INT64 = 7;

export type Attribute =
  { name: string; int: number } | { name: string; ints: number[] } | { name: string; float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Attribute[];
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export interface OnnxValue {
  name: string;
  elemType: number;
  /** A number is a fixed size, a string a symbolic one ("batch"). */
  shape: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  opset: number;
}

function writeValue(w: ProtoWriter, v: OnnxValue): void {
  w.string(1, v.name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, v.elemType).message(2, (shape) => {
        for (const d of v.shape)
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

/** The serialised ModelProto of a graph. */
export function encodeOnnxModel(g: OnnxGraph): Uint8Array {
  const model = new ProtoWriter();
  model.int(1, 8).string(2, 'operation-dbus');
  model.message(7, (graph) => {
    g.nodes.forEach((n, i) =>
      graph.message(1, (node) => {
        for (const x of n.inputs) node.string(1, x);
        for (const x of n.outputs) node.string(2, x);
        node.string(3, `${n.op}_${i}`).string(4, n.op);
        for (const a of n.attributes ?? [])
          node.message(5, (attr) => {
            attr.string(1, a.name);
            if ('int' in a) attr.int(3, a.int).int(20, 2);
            else if ('ints' in a) {
              for (const x of a.ints) attr.int(8, x);
              attr.int(20, 7);
            } else attr.float(2, a.float).int(20, 1);
          });
      }),
    );
    graph.string(2, g.name);
    for (const t of g.initializers)
      graph.message(5, (tensor) => {
        for (const d of t.dims) tensor.int(1, d);
        tensor.int(2, t.data instanceof Float32Array ? FLOAT : INT64).string(8, t.name);
        tensor.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      });
    for (const v of g.inputs) graph.message(11, (w) => writeValue(w, v));
    for (const v of g.outputs) graph.message(12, (w) => writeValue(w, v));
  });
  model.message(8, (opset) => opset.string(1, '').int(2, g.opset));
  return model.finish();
}
