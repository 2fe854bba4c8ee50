"""Minimal safetensors reader and writer for the reference checkpoints (no `safetensors` package here).

Format (https://github.com/huggingface/safetensors, README "Format"):

    +-----------+----------------------------+------------------------------------------+
    | bytes     | what                       | notes                                    |
    +-----------+----------------------------+------------------------------------------+
    | 0..8      | N, uint64 little-endian    | length of the JSON header                |
    | 8..8+N    | JSON header, UTF-8         | padded with spaces so 8+N is a multiple  |
    |           |                            | of 8                                     |
    | 8+N..     | raw little-endian data     | tensors back to back, row-major          |
    +-----------+----------------------------+------------------------------------------+

    header = {"__metadata__": {"format": "pt"},
              "<name>": {"dtype": "F32"|"BF16"|"F16"|"I64"..., "shape": [...],
                         "data_offsets": [begin, end]}}      # offsets relative to the data start

A sharded checkpoint adds model.safetensors.index.json:
    {"metadata": {"total_size": <bytes of tensor data>}, "weight_map": {"<name>": "<shard file>"}}

The writer streams: `ShardWriter.add` writes one tensor's bytes straight to disk, so a multi-gigabyte checkpoint
never sits in memory. Because the header precedes the data, a shard's tensors are declared (name, dtype, shape)
before their bytes are produced; `write_sharded` plans shards from those declarations first.
"""

import json
import os
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, bytes per element)
DTYPES = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
}
TORCH_TO_ST = {v[0]: k for k, v in DTYPES.items()}


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor_bytes(t):
    """Raw little-endian bytes of a tensor (bfloat16 goes through int16, which numpy can hold)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy()
    else:
        arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def _header_bytes(entries):
    """entries: list of (name, st_dtype, shape). Returns (padded header bytes, data size)."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, st_dtype, shape in entries:
        size = _numel(shape) * DTYPES[st_dtype][1]
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text, offset


class ShardWriter:
    """Writes one .safetensors file whose tensor list is known up front; tensors are then added in that order."""

    def __init__(self, path, entries):
        self.path = path
        self.entries = list(entries)
        self.next = 0
        head, self.data_size = _header_bytes(self.entries)
        self.f = open(path, "wb")
        self.f.write(head)

    def add(self, name, tensor):
        want_name, st_dtype, shape = self.entries[self.next]
        if name != want_name or list(tensor.shape) != list(shape) or TORCH_TO_ST[tensor.dtype] != st_dtype:
            raise ValueError(f"{self.path}: tensor {name} {tuple(tensor.shape)} {tensor.dtype} does not match the "
                             f"declared {want_name} {tuple(shape)} {st_dtype}")
        self.f.write(tensor_bytes(tensor))
        self.next += 1

    def close(self):
        if self.next != len(self.entries):
            raise ValueError(f"{self.path}: {len(self.entries) - self.next} declared tensors never written")
        self.f.close()


def write_file(path, tensors):
    """tensors: dict name -> torch tensor (insertion order kept)."""
    entries = [(k, TORCH_TO_ST[v.dtype], list(v.shape)) for k, v in tensors.items()]
    w = ShardWriter(path, entries)
    for k, v in tensors.items():
        w.add(k, v)
    w.close()


def write_sharded(out_dir, specs, make_tensor, max_shard_bytes):
    """Stream a sharded checkpoint.

    specs: list of (name, torch dtype, shape); make_tensor(name, dtype, shape) -> tensor, called once per tensor in
    order. Shards are filled greedily up to max_shard_bytes (a tensor larger than that gets a shard of its own).
    Writes model-0000K-of-0000M.safetensors and model.safetensors.index.json; returns the list of shard paths.
    """
    groups, cur, cur_bytes = [], [], 0
    for name, dtype, shape in specs:
        size = _numel(shape) * DTYPES[TORCH_TO_ST[dtype]][1]
        if cur and cur_bytes + size > max_shard_bytes:
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, dtype, shape))
        cur_bytes += size
    if cur:
        groups.append(cur)
    weight_map, total, paths = {}, 0, []
    for i, group in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        path = os.path.join(out_dir, fname)
        w = ShardWriter(path, [(n, TORCH_TO_ST[d], s) for n, d, s in group])
        for name, dtype, shape in group:
            w.add(name, make_tensor(name, dtype, shape))
            weight_map[name] = fname
        total += w.data_size
        w.close()
        paths.append(path)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return paths


def read_file(path):
    """Returns dict name -> torch tensor (copies; fine for the small test checkpoints)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, esize = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        if end - begin != _numel(info["shape"]) * esize or end > len(data):
            raise ValueError(f"{path}: tensor {name}: data_offsets {begin},{end} do not fit its shape/file")
        np_dtype = {torch.float32: "<f4", torch.float16: "<f2", torch.bfloat16: "<i2",
                    torch.int64: "<i8", torch.int32: "<i4"}[dtype]
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).copy()
        t = torch.from_numpy(arr)
        if dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(info["shape"])
    return out


def read_folder(model_dir):
    """Reads model.safetensors, or every shard listed in model.safetensors.index.json."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fname in files:
        out.update(read_file(os.path.join(model_dir, fname)))
    return out
