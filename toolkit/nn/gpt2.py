"""GPT-2 checkpoints (Hugging Face's layout) as a :class:`~toolkit.nn.language_model.DecoderLM`.

The layouts match by construction: GPT-2's ``Conv1D`` weights are (in, out),
as ours; its ``c_attn`` is [wq | wk | wv] along the output axis; the output
is tied to ``wte``. Tensor names may carry the ``transformer.`` prefix of
``GPT2LMHeadModel``; the causal-mask buffers some old files hold, and a
stored copy of the tied ``lm_head``, are not weights and are ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.errors import CheckpointError
from toolkit.nn.language_model import DecoderLM
from toolkit.nn.layers import weights_to_come
from toolkit.nn.layer_configs import MAX_DIM, MAX_LAYERS, MAX_LEN, MAX_VOCAB, check_size
from toolkit.nn.pretrained import Checkpoint, copy_layer_norm

# GPT-2's activations that are our GELU (the tanh approximation).
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def gpt2_args(config: dict, where: str) -> dict[str, Any]:
    """DecoderLM's arguments from a GPT-2 config.json; CheckpointError for one this code cannot run."""
    if config.get("model_type") != "gpt2":
        raise CheckpointError(f"{where}: a {config.get('model_type')!r} model, not GPT-2")
    activation = config.get("activation_function", "gelu_new")
    if activation not in TANH_GELU:
        raise CheckpointError(f"{where}: activation {activation!r}; nlp-tool runs GPT-2 with {', '.join(TANH_GELU)}")
    try:
        dim, heads = config["n_embd"], config["n_head"]
        args = {"vocab_size": check_size("GPT-2", "vocab_size", config["vocab_size"], 1, MAX_VOCAB),
                "dim": check_size("GPT-2", "n_embd", dim, 1, MAX_DIM),
                "heads": check_size("GPT-2", "n_head", heads, 1, dim),
                "layers": check_size("GPT-2", "n_layer", config["n_layer"], 1, MAX_LAYERS),
                "ffn": check_size("GPT-2", "n_inner", config.get("n_inner") or 4 * dim, 1, MAX_DIM),
                "max_len": check_size("GPT-2", "n_positions", config["n_positions"], 1, MAX_LEN)}
        eos = check_size("GPT-2", "eos_token_id", config.get("eos_token_id", 50256), 0, config["vocab_size"] - 1)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{where}: not a usable GPT-2 config ({error})") from None
    if dim % heads:
        raise CheckpointError(f"{where}: n_embd {dim} is not divisible by n_head {heads}")
    # GPT-2 has no padding token: its end-of-text token pads (padding is masked, never read).
    return {**args, "dropout": 0.0, "pad_id": eos, "eos_id": eos}


def _prefix(checkpoint: Checkpoint) -> str:
    return "transformer." if "transformer.wte.weight" in checkpoint.tensors else ""


def gpt2_shapes(args: dict[str, Any], prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Every tensor a GPT-2 of ``args`` (:func:`gpt2_args`) needs, by checkpoint name."""
    d, f = args["dim"], args["ffn"]
    shapes = {f"{prefix}wte.weight": (args["vocab_size"], d), f"{prefix}wpe.weight": (args["max_len"], d),
              f"{prefix}ln_f.weight": (d,), f"{prefix}ln_f.bias": (d,)}
    for i in range(args["layers"]):
        h = f"{prefix}h.{i}."
        shapes.update({h + "ln_1.weight": (d,), h + "ln_1.bias": (d,), h + "attn.c_attn.weight": (d, 3 * d),
                       h + "attn.c_attn.bias": (3 * d,), h + "attn.c_proj.weight": (d, d), h + "attn.c_proj.bias": (d,),
                       h + "ln_2.weight": (d,), h + "ln_2.bias": (d,), h + "mlp.c_fc.weight": (d, f),
                       h + "mlp.c_fc.bias": (f,), h + "mlp.c_proj.weight": (f, d), h + "mlp.c_proj.bias": (d,)})
    return shapes


def gpt2_model(checkpoint: Checkpoint) -> DecoderLM:
    """The checkpoint's GPT-2 as a DecoderLM, every tensor checked before any is read."""
    args = gpt2_args(checkpoint.config, str(checkpoint.folder))
    prefix = _prefix(checkpoint)
    shapes = gpt2_shapes(args, prefix)
    checkpoint.check(shapes)
    t = checkpoint.load(list(shapes))
    with weights_to_come():
        model = DecoderLM(**args, seed=0)
    eps = float(checkpoint.config.get("layer_norm_epsilon", 1e-5))
    d = args["dim"]

    def norm(layer: Any, name: str) -> None:
        layer.eps = eps
        copy_layer_norm(layer, t, name)

    model.wte.params["table"][...] = t[f"{prefix}wte.weight"]
    model.wpe.params["table"][...] = t[f"{prefix}wpe.weight"]
    for i, block in enumerate(model.blocks):
        h = f"{prefix}h.{i}."
        norm(block.ln1, h + "ln_1")
        norm(block.ln2, h + "ln_2")
        w, b = t[h + "attn.c_attn.weight"], t[h + "attn.c_attn.bias"]
        for j, name in enumerate("qkv"):
            block.attn.params["w" + name][...] = w[:, j * d:(j + 1) * d]
            block.attn.params["b" + name][...] = b[j * d:(j + 1) * d]
        block.attn.params["wo"][...] = t[h + "attn.c_proj.weight"]
        block.attn.params["bo"][...] = t[h + "attn.c_proj.bias"]
        block.ff1.params["w"][...], block.ff1.params["b"][...] = t[h + "mlp.c_fc.weight"], t[h + "mlp.c_fc.bias"]
        block.ff2.params["w"][...], block.ff2.params["b"][...] = t[h + "mlp.c_proj.weight"], t[h + "mlp.c_proj.bias"]
    norm(model.ln_f, f"{prefix}ln_f")
    return model


def gpt2_tensors(model: DecoderLM) -> dict[str, np.ndarray]:
    """A DecoderLM's weights under GPT-2's tensor names (what :func:`gpt2_model` reads back)."""
    tensors = {"wte.weight": model.wte.params["table"], "wpe.weight": model.wpe.params["table"],
               "ln_f.weight": model.ln_f.params["gamma"], "ln_f.bias": model.ln_f.params["beta"]}
    for i, block in enumerate(model.blocks):
        h, attn = f"h.{i}.", block.attn
        w, b = attn.fused_qkv()
        tensors.update({h + "ln_1.weight": block.ln1.params["gamma"], h + "ln_1.bias": block.ln1.params["beta"],
                        h + "attn.c_attn.weight": w, h + "attn.c_attn.bias": b,
                        h + "attn.c_proj.weight": attn.params["wo"], h + "attn.c_proj.bias": attn.params["bo"],
                        h + "ln_2.weight": block.ln2.params["gamma"], h + "ln_2.bias": block.ln2.params["beta"],
                        h + "mlp.c_fc.weight": block.ff1.params["w"], h + "mlp.c_fc.bias": block.ff1.params["b"],
                        h + "mlp.c_proj.weight": block.ff2.params["w"], h + "mlp.c_proj.bias": block.ff2.params["b"]})
    return {name: np.ascontiguousarray(value) for name, value in tensors.items()}
