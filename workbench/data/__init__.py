"""Training data: dataset sources, one chat formatter, packing and splits, prompt/answer rows, data generation by the
teacher."""
