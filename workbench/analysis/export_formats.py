"""The export formats, named once for the exporters, the CLI's --format choices and the app's dropdown.

Light on purpose (no torch, gguf or onnx import), so `workbench --help` and the app's forms stay fast.
"""

from __future__ import annotations

GGUF_FORMATS = ("gguf-f16", "gguf-q8_0", "gguf-q4_0")  # llama.cpp / Ollama; Llama, Mistral, Qwen2, Qwen3 students
ONNX_FORMATS = ("onnx", "onnx-int8")  # ONNX Runtime decoder step with KV cache; float32 and dynamic int8
EXPORT_FORMATS = ("safetensors", *GGUF_FORMATS, *ONNX_FORMATS)
