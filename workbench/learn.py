"""Plain-words explanations of the ideas behind the setup controls, shown in the app's Learn tab.

    from workbench.learn import TOPICS, topic_markdown, learn_markdown
    print(learn_markdown())            # every topic as one Markdown page

Each topic points to the notebook in `notebooks/` where the idea can be run and changed. The one-sentence help of
each individual control lives next to the field, in `workbench.config` (`field_help`).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import UserError

NOTEBOOK_DIR = "notebooks"


@dataclass(frozen=True)
class Topic:
    """One idea: a short key, a title, a few paragraphs of Markdown, the fields it explains, its notebook (or, where
    it has none, a command that runs it: `try_it`)."""

    key: str
    title: str
    body: str
    fields: tuple[str, ...]
    notebook: str
    try_it: str = ""


TOPICS: tuple[Topic, ...] = (
    Topic(
        key="distillation",
        title="What knowledge distillation is",
        body=(
            "A large **teacher** model already predicts the next token well. A smaller **student** learns to copy "
            "the teacher's whole next-token *distribution* at every position, not only the one token that the "
            "text actually contains. That distribution says much more than the hard label: which other words "
            "would also fit, and how close they came. With the same data and the same number of steps, a student "
            "trained on the teacher's distribution usually ends up better than one trained on the text alone."
        ),
        fields=("models.teacher", "models.student"),
        notebook="02_distil_the_builtin_teacher.ipynb",
    ),
    Topic(
        key="temperature",
        title="Temperature",
        body=(
            "Both models' logits are divided by the temperature **T** before the softmax. At T = 1 the teacher is "
            "often sure of one token and the other tokens get tiny probabilities; at T = 2 or 4 the distribution "
            "gets flatter, so the student also sees the teacher's second, third and tenth choices (the "
            "*dark knowledge*). The ranking never changes, only how much of it the loss can see.\n\n"
            "Dividing by T also shrinks the gradient of the divergence by about 1/T², so a run at T = 4 would "
            "learn 16 times slower. **Scale by T²** multiplies the loss back so the step size stays the same "
            "whatever T you pick. Keep it on unless you are comparing against a recipe that leaves it off. "
            "Try T between 1 and 4; values above 8 wash the distribution out."
        ),
        fields=("loss.temperature", "loss.t2_scale"),
        notebook="01_soft_targets_and_temperature.ipynb",
    ),
    Topic(
        key="divergences",
        title="Divergences: how the student is compared with the teacher",
        body=(
            "The divergence measures how far the student's distribution q is from the teacher's p.\n\n"
            "- **forward_kl** KL(p‖q): the student is punished wherever the teacher puts mass and the student "
            "does not, so it spreads out to *cover* every plausible token. The classic choice.\n"
            "- **reverse_kl** KL(q‖p): the student is punished for putting mass where the teacher puts none, so "
            "it *seeks* one mode and stays sharp; good for a small student that cannot hold everything.\n"
            "- **jsd** with β: a mix of the two that never explodes; β = 0 is forward KL, β = 1 reverse KL. Its "
            "value changes steeply near both ends: β = 0.05 can give 25× less than β = 0, so the loss (and the "
            "learning rate that suits it) shifts a lot for a small move of β there.\n"
            "- **kl_mix** with β: (1−β)·forward KL + β·reverse KL, linear in β. A small β keeps forward KL's broad "
            "student and adds a penalty for mass where the teacher has none.\n"
            "- **skew_forward_kl / skew_reverse_kl** with α: KL against a mixture that is α of the other side, "
            "which keeps the loss and its gradient finite when one side gives a token almost nothing.\n"
            "- **tvd**: half the summed absolute difference; bounded by 1 and mode-seeking in practice.\n"
            "- **soft_ce**: forward KL plus the teacher's entropy (same gradient, different number).\n"
            "- **mse**: squared difference of raw logits, no softmax and no temperature.\n\n"
            "Not sure? Start with forward_kl at T = 2; try reverse_kl or jsd when the student is much smaller."
        ),
        fields=("loss.divergence", "loss.beta", "loss.alpha"),
        notebook="03_choosing_the_divergence.ipynb",
    ),
    Topic(
        key="weights",
        title="Loss weights",
        body=(
            "The training loss is a weighted sum:\n\n"
            "`w_ce·CE + w_kd·divergence + w_hidden·hidden + w_attn·attention`\n\n"
            "- **ce_weight**: cross-entropy on the real next token of the data (plain fine-tuning).\n"
            "- **kd_weight**: the divergence to the teacher's distribution (distillation proper).\n"
            "- **hidden_weight** and **attn_weight**: match the student's inner layers to the teacher's "
            "(see *Layer mapping*).\n\n"
            "kd_weight = 1 with everything else 0 is pure distillation; adding a little CE (0.1 to 0.5) anchors "
            "the student to the data when the teacher makes mistakes. The terms have different sizes, so watch "
            "each curve on the Train tab: a term that dwarfs the others decides what the student learns."
        ),
        fields=("loss.ce_weight", "loss.kd_weight", "loss.hidden_weight", "loss.attn_weight"),
        notebook="02_distil_the_builtin_teacher.ipynb",
    ),
    Topic(
        key="mapping",
        title="Layer mapping, hidden states and attention",
        body=(
            "Besides the output distribution, a student can learn from the teacher's *inside*. The mapping says "
            "which teacher layer each student layer learns from:\n\n"
            "- **uniform**: student layer i learns from the teacher layer at the same relative depth.\n"
            "- **last**: only the last layers are paired.\n"
            "- **custom**: your own pairs such as `3:11` or `emb:emb` (the embedding output).\n\n"
            "**Hidden-state matching** (FitNets) pulls each student layer's output towards its teacher layer's; "
            "when the widths differ, a small trained projector maps student width to teacher width first (it is "
            "not part of the exported student). A decoder puts \"massive activations\" on its first position, "
            "hundreds of times larger than elsewhere, so plain **mse** is almost all that one position; **ln_mse** "
            "(mse after a layer norm without parameters) and **cosine** weigh every position the same, and "
            "**Skip first position** leaves it out. **Attention transfer** makes the student's attention maps "
            "look like the teacher's, averaged over heads when the head counts differ: **kl** is the KL between "
            "the attention distributions (MiniLM's loss), **mse** the squared difference of the probabilities "
            "(TinyBERT used an MSE on the scores before the softmax). Both help most when the student starts far "
            "from the teacher, for example a freshly initialised one."
        ),
        fields=("mapping.strategy", "mapping.pairs", "loss.hidden_loss", "loss.hidden_skip_first", "loss.attn_loss"),
        notebook="04_layer_mapping.ipynb",
    ),
    Topic(
        key="lora",
        title="LoRA students",
        body=(
            "With **LoRA** the student's own weights stay frozen and small low-rank updates are trained next to "
            "chosen linear layers (rank **r**, scaled by alpha / r). Far fewer parameters are trained, so the "
            "optimizer needs less memory and checkpoints are tiny; each step still runs the whole model, so it is "
            "not much faster on a CPU. With the same steps a full student usually learns more; LoRA shines when "
            "memory is short or the student is already close. Export merges the adapters into the weights, so "
            "the exported student is an ordinary model."
        ),
        fields=("lora.enabled", "lora.r", "lora.alpha", "lora.dropout", "lora.target_modules"),
        notebook="05_lora_student_tradeoffs.ipynb",
    ),
    Topic(
        key="pruning",
        title="Pruning and healing",
        body=(
            "The quickest good student is the teacher itself with layers removed: `BASE?prune=keep&layers=0-2,6-11`, "
            "`prune=drop`, `prune=even` or `prune=importance` (keeps the layers whose removal hurts least). Every "
            "kept layer starts as an exact copy of a teacher layer, so the student already knows a lot.\n\n"
            "Each removed block leaves a **gap**: the next kept layer expects the output of layers that are gone. "
            "**Healing** (`train.heal_init`) closes each gap before training with a least-squares fit of the MLP "
            "output around it, computed in closed form in seconds on a CPU; the fitted errors are in the run's "
            "metrics (`heal` rows). Then distillation trains the rest.\n\n"
            "For hidden-state or attention terms, the **source** mapping pairs each kept layer with the teacher "
            "layer it was copied from (uniform would pair it with a neighbour). Remove too many layers and the "
            "student loses more than training can give back: keep an eye on the size ratio on the compatibility "
            "card."
        ),
        fields=("models.student", "train.heal_init", "mapping.strategy"),
        notebook="08_pruning_and_healing.ipynb",
    ),
    Topic(
        key="width",
        title="How small can it go: width against depth, and reading the frontier",
        body=(
            "A student can lose **depth** (whole layers) or **width** (inside every layer: MLP channels, attention "
            "heads by key/value group, hidden channels). The spec says which: `BASE?prune=importance&layers=24` "
            "cuts depth, `BASE?prune=importance&mlp=510` cuts width, `...&layers=24&mlp=760` both. Width channels "
            "are ranked by how strongly they fire on calibration text (the activation importance of Minitron, "
            "Muralidharan et al. 2024), so the quiet ones go first; healing then solves each layer's attention "
            "and MLP output projections in closed form so the narrower layer reproduces its teacher layer's "
            "output.\n\n"
            "At the same number of parameters, cutting width in every layer hurts more *before* any repair; after "
            "healing and training, a student that cuts both width and depth usually ends closer to the teacher at "
            "half its size or less (every layer keeps its place in the computation), while a depth-pruned one "
            "decodes faster (fewer layers to run one after another per token). Which matters more depends on what "
            "you need, so "
            "measure it: the **Sweeps** tab (`workbench sweep`) trains several students with one recipe and one "
            "budget and draws the **frontier**.\n\n"
            "Reading it: each blue point is a distilled student, its hollow grey twin the same student before "
            "distillation, the star the teacher (reverse KL 0). Lower is closer to the teacher; left is smaller "
            "(right plot: right is faster). A ringed point is **Pareto-optimal**: no other model is both smaller "
            "(or faster) and closer. Pick among the ringed points the smallest one whose reverse KL and repeated "
            "4-grams you can accept. The sentence under each student gives its numbers; each says what it was "
            "measured on."
        ),
        fields=("models.student", "train.heal_init"),
        notebook="08_pruning_and_healing.ipynb",
    ),
    Topic(
        key="metrics",
        title="Reading the metrics: teacher-forced vs generated",
        body=(
            "Most numbers on the Train tab are **teacher-forced**: the student reads the real text and predicts "
            "only the next token. Train KD is measured at the run's temperature T (times T² when that is on); the "
            "eval numbers at T = 1 on the held-out validation split: **perplexity** (how surprised the student is "
            "by the real next token; the teacher's is drawn as a dotted reference line), **KL(teacher‖student)** "
            "and **top-1 agreement** (how often both pick the same most likely token).\n\n"
            "They can look good while the student writes nonsense: when it generates, each token it picks becomes "
            "its own input, and early mistakes pile up (*exposure bias*). **Generated** numbers measure that: the "
            "student answers held-out prompts, then the teacher reads the answers. **Reverse KL to the teacher** "
            "(nats per answer token) is 0 when the teacher would have written the same; **teacher NLL** says how "
            "plausible the teacher finds the answer; **repeated 4-grams** catch loops; **empty answers** catch a "
            "student that stops at once.\n\n"
            "Compare numbers measured on the same rows only: every number in the app says what it was measured on."
        ),
        fields=("train.eval_every",),
        notebook="02_distil_the_builtin_teacher.ipynb",
    ),
    Topic(
        key="onpolicy",
        title="On-policy distillation",
        body=(
            "Ordinary (off-policy) distillation only shows the student the dataset's text. **On-policy** "
            "distillation lets the student write: for a share **λ** of the batches it samples its own answers to "
            "the batch's prompts, and the teacher grades every sampled token. The divergence is taken on those "
            "answer tokens only, so the student learns to recover from its own mistakes, the ones it will make "
            "when it chats. Reverse KL or JSD(β) are the usual choices (GKD, Agarwal et al. 2024; MiniLLM).\n\n"
            "Sampling costs time: the Train tab shows generation tokens/s and the share of each step spent "
            "generating. With **seq_kd** the teacher writes the answers instead (sequence-level distillation). "
            "Judge the result by the generated numbers (reverse KL on the student's own answers, repeated "
            "4-grams), not by perplexity alone."
        ),
        fields=("loss.divergence",),
        notebook="06_on_policy_distillation.ipynb",
    ),
    Topic(
        key="crosstok",
        title="Any teacher, any student: two tokenizers",
        body=(
            "Ordinary KD compares the teacher's and the student's next-token distributions position by position, "
            "which needs one tokenizer. A student with a tokenizer of its own (smaller, or trained on its own text) "
            "cuts the same text into other tokens: positions no longer pair up, and the two vocabularies are "
            "different sets of strings. The workbench spells the student's rows out as text, lets the teacher read "
            "that text with its own tokenizer, and aligns the two tokenizations into **spans** that cover the same "
            "bytes on both sides.\n\n"
            "`loss.cross_tokenizer` chooses what a span compares. **aligned** (the default): where a span is one "
            "token on each side (the same string, an *exact match*), the two next-token distributions over the "
            "strings both vocabularies hold; elsewhere, how likely each side finds the span's whole text. **uld** "
            "(Universal Logit Distillation): the two probability vectors sorted from largest to smallest, which "
            "ignores which token is which.\n\n"
            "Perplexity depends on the tokenizer, so such models are compared in **bits per byte**: the "
            "cross-entropy in bits per byte of the text, whatever its tokens. On the built-in pair with scarce data "
            "(a few hundred rows read many times), CE + aligned ended 5.8% below CE only in bits per byte (three "
            "seeds) and uld did not help; with more data the gain shrinks. The Setup tab's **Tokenizer alignment** "
            "shows the spans of a sample text."
        ),
        fields=("loss.cross_tokenizer",),
        notebook="09_any_teacher_any_student.ipynb",
    ),
    Topic(
        key="quantize",
        title="Shipping a small student: quantized exports",
        body=(
            "A distilled student is meant to run somewhere small: llama.cpp or Ollama on a laptop (**GGUF**), ONNX "
            "Runtime on a phone or an edge box (**ONNX**). Both can store weights in fewer bits: **q8_0** keeps 8 "
            "bits per weight in blocks of 32 weights that share one scale, **q4_0** 4 bits, and ONNX **int8** does "
            "the same for the matrix multiplications. Fewer bits mean a smaller file and fewer bytes read for every "
            "generated token, which is what limits decoding speed on a CPU; the rounding costs some quality on top "
            "of what distillation cost.\n\n"
            "Compare the two costs on the same text: the KL from the float student to its rounded copy beside the "
            "KL from the teacher to the float student. When the first is small next to the second, the rounding is "
            "cheap. Export (the Report & export tab, or `workbench export RUN OUT --format gguf-q8_0`) reads every "
            "file back with a runtime that is not the workbench's before it puts it in place, and the report card "
            "scores each picked export in its own runtime: size, speed and quality, each saying what it was "
            "measured on."
        ),
        fields=(),
        notebook="07_quantizing_the_student.ipynb",
    ),
    Topic(
        key="multitask",
        title="Multi-task distillation",
        body=(
            "A student distilled for one narrow task tends to forget how to chat, and one distilled on chat alone "
            "cannot do the task. **Multi-task distillation** trains on a mixture instead: each row of a batch is "
            "drawn from one of several **tasks** (`data.tasks`), task k with probability weight_k / Σ weights, and "
            "each task keeps its own loss mix. A task with gold answers or labels takes **CE** on them, the hard "
            "labels that teach the task itself; the teacher's **KD** term on the same tokens, and KD alone on the "
            "chat rows, carries the teacher's general behaviour, so what the student learns for the task does not "
            "push the rest out.\n\n"
            "A task is **lm** (plain text, loss on every token), **chat** (prompt and answer), **qa** (a question and "
            "a short answer, scored by exact match and token F1 of the student's greedy answer) or **classify** "
            "(text and a label from a fixed set, scored by which label word the model finds most probable after the "
            "question, not by matching free text). Every evaluation scores each task on its own held-out items, "
            "beside the teacher's score on the same items: a task the teacher answers at chance has nothing to teach "
            "by KD.\n\n"
            "Reading a run: the Train tab draws one curve per task, with the teacher's score as a dotted line. A mix "
            "works when each task's score climbs toward the teacher's line while the chat perplexity does not rise. "
            "Give a task more **weight** for more of each batch, more **CE weight** to lean on its labels, more "
            "**KD weight** to lean on the teacher. The Setup tab's task table edits all of this."
        ),
        fields=("data.tasks",),
        notebook="10_multi_task_distillation.ipynb",
    ),
)


def topic(key: str) -> Topic:
    """The topic with this key; UserError naming the known keys otherwise."""
    for item in TOPICS:
        if item.key == key:
            return item
    raise UserError(f"explanation topic must be one of {', '.join(t.key for t in TOPICS)}, got {key!r}")


def topic_markdown(key: str) -> str:
    """One topic as Markdown: title, body, and the notebook to run."""
    item = topic(key)
    if not item.notebook:
        return (f"### {item.title}\n\n{item.body}\n\n*Try it:* `{item.try_it}` (or that preset in the Setup tab) "
                "runs this idea on the built-in models.")
    return (
        f"### {item.title}\n\n{item.body}\n\n"
        f"*Try it:* `{NOTEBOOK_DIR}/{item.notebook}` runs this idea on the built-in models in a few minutes on a CPU."
    )


def learn_markdown() -> str:
    """Every topic, in order, as one Markdown page."""
    return "\n\n---\n\n".join(topic_markdown(item.key) for item in TOPICS)
