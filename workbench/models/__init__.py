"""Models: the spec grammar, loading (the only place that reads weights), pruning and healing, LoRA, tokenizers and
their alignment, the compatibility card and the shared model pool."""
