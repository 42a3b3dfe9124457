"""Redraws the README figure assets/figures/soft_targets.png: the built-in teacher's next-token distribution
softened at several temperatures.

    .venv/bin/python notebooks/readme_figure.py

Needs kaleido and a Chromium (`BROWSER_PATH=/usr/bin/chromium` when it is not found on its own).
"""

from __future__ import annotations

import os
from pathlib import Path

FIGURE_PATH = Path(__file__).resolve().parent.parent / "assets" / "figures" / "soft_targets.png"


def draw_readme_figure(path: Path = FIGURE_PATH) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import plotly.graph_objects as go
    import torch

    from workbench.analysis.plots import softened_distribution
    from workbench.config import BUILTIN_TEACHER
    from workbench.models.loading import load_model, load_tokenizer

    prompt = "She opened the fridge and took out a bottle of"
    teacher, tokenizer = load_model(BUILTIN_TEACHER), load_tokenizer(BUILTIN_TEACHER)
    with torch.no_grad():
        logits = teacher(**tokenizer(prompt, return_tensors="pt")).logits[0, -1]
    top = logits.topk(10).indices.tolist()
    labels = [tokenizer.decode([i]).strip() or "␣" for i in top]
    figure = go.Figure()
    for temperature, color in ((0.5, "#94a3b8"), (1.0, "#2563eb"), (2.0, "#f59e0b"), (4.0, "#dc2626")):
        probs = softened_distribution(logits, temperature)
        figure.add_trace(go.Bar(x=labels, y=[probs[i] for i in top], name=f"T = {temperature:g}", marker_color=color))
    figure.update_layout(
        barmode="group", width=900, height=380, template="plotly_white",
        title=f"Built-in teacher, next token after “{prompt} …”: softmax(logits / T)",
        yaxis=dict(title="probability (log scale)", type="log"),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
        margin=dict(l=60, r=20, t=80, b=50),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_image(path, scale=2)
    return path


if __name__ == "__main__":
    print(f"wrote {draw_readme_figure().relative_to(FIGURE_PATH.parent.parent.parent)}")
