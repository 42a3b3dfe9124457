"""The distillation engine: pure losses (dense, chunked, closed form, top-k, cross-tokenizer), layer mapping and
capture, the step, the trainer on accelerate, optimizer, checkpoints, teacher cache, on-policy sampling."""
