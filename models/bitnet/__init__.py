"""BitNet b1.58: configurations (pure Python) and, in submodules, the torch model."""

from .config import CONFIGS, BitNetConfig, get_config

__all__ = ["CONFIGS", "BitNetConfig", "get_config"]
