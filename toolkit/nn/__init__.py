"""Neural-network layers, losses, optimizers, model files and training on the compiled kernels."""

from toolkit.nn.attention import MultiHeadAttention
from toolkit.nn.containers import Residual, Sequential
from toolkit.nn.layer_configs import layer_from_config
from toolkit.nn.layers import (
    GELU,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    GlobalMaxPool1D,
    Layer,
    LayerNorm,
    ReLU,
    Sigmoid,
    SiLU,
    Tanh,
)
from toolkit.nn.positions import PositionalEmbedding, sinusoidal_positions
from toolkit.nn.losses import binary_cross_entropy_with_logits, mean_squared_error, softmax_cross_entropy
from toolkit.nn.model_file import (
    ModelFileError,
    load_model,
    read_metadata,
    read_model_file,
    rewrite_metadata,
    save_arrays,
    save_model,
    text_arrays,
    texts_from_arrays,
)
from toolkit.nn.optim import SGD, Adam, AdamW, clip_grad_norm, constant, warmup_inverse_sqrt, warmup_linear
from toolkit.nn.recurrent import GRU, BiGRU
from toolkit.nn.checkpoint import Checkpoint, read_checkpoint
from toolkit.nn.trainer import History, Trainer, TrainingInterrupted
from toolkit.nn.training import fit, predict
from toolkit.nn.transformer import DecoderCache, Seq2SeqTransformer

__all__ = [
    "GELU", "Conv1D", "Dense", "Dropout", "Embedding", "GlobalMaxPool1D", "Layer", "LayerNorm",
    "MultiHeadAttention", "PositionalEmbedding", "ReLU", "Residual", "Sequential", "Sigmoid", "SiLU", "Tanh",
    "layer_from_config", "sinusoidal_positions", "binary_cross_entropy_with_logits", "mean_squared_error",
    "softmax_cross_entropy", "ModelFileError", "load_model", "read_metadata", "read_model_file", "rewrite_metadata",
    "save_arrays", "save_model", "text_arrays", "texts_from_arrays", "SGD", "Adam",
    "AdamW", "clip_grad_norm", "constant", "warmup_inverse_sqrt", "warmup_linear", "History", "fit", "predict",
    "Checkpoint", "read_checkpoint", "Trainer", "TrainingInterrupted",
    "DecoderCache", "Seq2SeqTransformer", "GRU", "BiGRU",
]
