"""Bad input is refused before training starts, with a message that names the field: a table of cases through the
shared preflight, a few of them again through `workbench train` (exit 2, one line, no run folder) and through the
app's `/start_run` (a gradio error, no run folder, the app still answering), and an upload above the size limit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml
from app_helpers import free_port
from engine_helpers import tiny_config
from tiny import WORDS, tiny_tokenizer

from workbench.cli import main
from workbench.config import DistillConfig
from workbench.engine.preflight import preflight
from workbench.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def _save_tokenizer_with_other_ids(folder: Path) -> None:
    """The tiny vocabulary with ids reversed: same words, different ids, so logits do not line up."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "<s>", "</s>", *reversed(sorted(set(WORDS)))]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, tiny_teacher, tiny_student, tiny_text) -> dict[str, Path]:
    """Odd models and files next to the tiny pair, each wrong in one way."""
    from transformers import BertConfig, MambaConfig, MambaForCausalLM, T5Config

    root = tmp_path_factory.mktemp("zoo")
    paths = {"teacher": tiny_teacher, "student": tiny_student, "text": tiny_text, "root": root}
    for name, config in (("t5", T5Config(d_model=16, d_ff=32, num_layers=1, num_heads=2, vocab_size=100)),
                         ("bert", BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32, architectures=["BertForMaskedLM"]))):
        config.save_pretrained(root / name)
        paths[name] = root / name
    mamba = MambaForCausalLM(MambaConfig(vocab_size=len(tiny_tokenizer()), hidden_size=16, state_size=4,
                                         num_hidden_layers=2, expand=2, conv_kernel=2, eos_token_id=3))
    mamba.save_pretrained(root / "mamba")
    tiny_tokenizer().save_pretrained(root / "mamba")
    paths["mamba"] = root / "mamba"
    for name in ("other_tok", "pickle_only", "no_weights"):
        shutil.copytree(tiny_student, root / name)
        paths[name] = root / name
    _save_tokenizer_with_other_ids(root / "other_tok")
    (root / "pickle_only" / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(1)}, root / "pickle_only" / "pytorch_model.bin")
    (root / "no_weights" / "model.safetensors").unlink()
    remote = root / "remote_code"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({"model_type": "my-own-arch", "auto_map": {
        "AutoConfig": "configuration.MyConfig", "AutoModelForCausalLM": "modeling.MyModel"}}))
    paths["remote_code"] = remote
    files = {"empty.txt": b"", "blank.txt": b"  \n\n ", "binary.txt": b"\x00\x01\x02 not text \x00" * 20,
             "latin1.txt": "café crème brûlée, à la carte ".encode("latin-1") * 20,
             "no_col.csv": b"title,body\nhello,world\nmore,rows\n", "no_col.jsonl": b'{"content": "the king"}\n' * 5,
             "broken.jsonl": b'{"text": "the king"}\n{"text": \n', "short.txt": b"the king .",
             "notes.docx": b"PK\x03\x04 zipped", "list.json": b"[1, 2, 3]"}
    for name, content in files.items():
        (root / name).write_bytes(content)
        paths[name.replace(".", "_")] = root / name
    (root / "a_file").write_text("not a folder")
    paths["a_file"] = root / "a_file"
    (root / "runs" / "taken").mkdir(parents=True)
    return paths


# (case id, changes per section or raw YAML text, the field the message must name, another fragment it must hold)
CASES = [
    # models: specs that do not resolve, or resolve to something that cannot be distilled
    ("unknown builtin", {"models": {"teacher": "builtin:smollm2-135m-instrct"}}, "models.teacher", "available"),
    ("misspelled derivation", {"models": {"student": "{student}?prune=evn&layers=1"}}, "models.student", "accepted"),
    ("unknown derivation key", {"models": {"student": "{student}?fresh&layerz=2"}}, "models.student", "accepted"),
    ("hub id offline", {"models": {"teacher": "some-org/no-such-model-xyz"}}, "models.teacher", "offline"),
    ("missing model folder", {"models": {"student": "./no/such/model"}}, "models.student", "config.json"),
    ("not a causal LM (T5)", {"models": {"teacher": "{t5}"}}, "models.teacher", "not a causal"),
    ("masked LM (BERT)", {"models": {"student": "{bert}"}}, "models.student", "ForCausalLM"),
    ("needs remote code", {"models": {"student": "{remote_code}"}}, "models.student", "trust_remote_code=true"),
    ("pickle-only weights", {"models": {"student": "{pickle_only}"}}, "models.student", "allow_pickle"),
    ("no weights at all", {"models": {"student": "{no_weights}"}}, "models.student", "model.safetensors"),
    ("hidden term across tokenizers", {"models": {"student": "{other_tok}"}, "loss": {"hidden_weight": 1.0}},
     "loss.hidden_weight", "tokenizers differ"),
    ("attention term across tokenizers", {"models": {"student": "{other_tok}"}, "loss": {"attn_weight": 1.0}},
     "loss.attn_weight", "tokenizers differ"),
    ("teacher cache across tokenizers", {"models": {"student": "{other_tok}"}, "train": {"teacher_cache": "{root}"}},
     "train.teacher_cache", "tokenizers differ"),
    ("raw-logit mse across tokenizers", {"models": {"student": "{other_tok}"}, "loss": {"divergence": "mse"}},
     "loss.divergence", "forward_kl"),
    ("attention on a model without attention", {"models": {"student": "{mamba}"}, "loss": {"attn_weight": 1.0}},
     "loss.attn_weight", "no attention"),
    ("seq_len above max positions", {"data": {"seq_len": 1024}}, "data.seq_len", "<= 512"),
    # mapping
    ("student layer out of range", {"loss": {"hidden_weight": 1.0}, "mapping": {"strategy": "custom", "pairs": ["5:1"]}},
     "mapping.pairs", "0..1"),
    ("teacher layer out of range", {"loss": {"hidden_weight": 1.0}, "mapping": {"strategy": "custom", "pairs": ["0:9"]}},
     "mapping.pairs", "0..3"),
    ("duplicated student layer", {"mapping": {"strategy": "custom", "pairs": ["0:1", "0:2"]}}, "mapping.pairs", "twice"),
    ("emb paired with a layer", {"mapping": {"strategy": "custom", "pairs": ["emb:1"]}}, "mapping.pairs", "emb"),
    ("malformed pair", {"mapping": {"strategy": "custom", "pairs": ["one:two"]}}, "mapping.pairs", "3:11"),
    ("hidden weight with no pairs", {"loss": {"hidden_weight": 1.0}, "mapping": {"strategy": "custom", "pairs": []}},
     "mapping.pairs", "at least one pair"),
    ("attention weight with only emb", {"loss": {"attn_weight": 1.0}, "mapping": {"strategy": "custom",
                                                                                 "pairs": ["emb:emb"]}},
     "mapping.pairs", "decoder layers"),
    ("layer terms with a teacher cache", {"loss": {"hidden_weight": 1.0}, "train": {"teacher_cache": "{root}"}},
     "train.teacher_cache", "hidden_weight"),
    ("missing teacher cache", {"train": {"teacher_cache": "{root}/no-cache"}}, "train.teacher_cache", "cache-teacher"),
    ("healing a student that is not a pruned teacher", {"train": {"heal_init": True}}, "train.heal_init",
     "?prune="),
    # LoRA
    ("LoRA target not found", {"lora": {"enabled": True, "target_modules": ["q_proj", "qkv_projj"]}},
     "lora.target_modules", "q_proj"),
    # loss values
    ("temperature zero", {"loss": {"temperature": 0}}, "loss.temperature", "> 0"),
    ("temperature negative", {"loss": {"temperature": -1.5}}, "loss.temperature", "> 0"),
    ("temperature absurd", {"loss": {"temperature": 1e6}}, "loss.temperature", "<= 100"),
    ("negative kd weight", {"loss": {"kd_weight": -1}}, "loss.kd_weight", ">= 0"),
    ("negative attention weight", {"loss": {"attn_weight": -0.1}}, "loss.attn_weight", ">= 0"),
    ("all weights zero", {"loss": {"ce_weight": 0, "kd_weight": 0}}, "loss", "not all zero"),
    ("unknown divergence", {"loss": {"divergence": "kl"}}, "loss.divergence", "forward_kl"),
    # training values
    ("steps zero", {"train": {"steps": 0}}, "train.steps", "[1,"),
    ("steps negative", {"train": {"steps": -5}}, "train.steps", "[1,"),
    ("batch zero", {"train": {"batch_size": 0}}, "train.batch_size", "[1,"),
    ("learning rate zero", {"train": {"lr": 0}}, "train.lr", "> 0"),
    ("learning rate negative", {"train": {"lr": -1e-4}}, "train.lr", "> 0"),
    ("device that is not here", {"train": {"device": "cuda:7"}}, "train.device", "accepted here"),
    ("seq_len too small", {"data": {"seq_len": 2}}, "data.seq_len", "[8,"),
    # data
    ("missing file", {"data": {"dataset": "{root}/nope.txt"}}, "data.dataset", "no such file"),
    ("empty file", {"data": {"dataset": "{empty_txt}"}}, "data.dataset", "empty"),
    ("whitespace-only file", {"data": {"dataset": "{blank_txt}"}}, "data.dataset", "empty"),
    ("binary file", {"data": {"dataset": "{binary_txt}"}}, "data.dataset", "binary"),
    ("non-UTF-8 file", {"data": {"dataset": "{latin1_txt}"}}, "data.dataset", "UTF-8"),
    ("CSV without the text column", {"data": {"dataset": "{no_col_csv}"}}, "data.text_column", "title, body"),
    ("JSONL without the text column", {"data": {"dataset": "{no_col_jsonl}"}}, "data.text_column", "content"),
    ("JSONL with a broken line", {"data": {"dataset": "{broken_jsonl}"}}, "data.dataset", "line 2"),
    ("JSON that is not records", {"data": {"dataset": "{list_json}"}}, "data.dataset", "JSON object"),
    ("unsupported file type", {"data": {"dataset": "{notes_docx}"}}, "data.dataset", ".docx"),
    ("too little text", {"data": {"dataset": "{short_txt}"}}, "data.dataset", "too little"),
    ("unknown built-in dataset", {"data": {"dataset": "builtin:wiki"}}, "data.dataset", "builtin:kjv"),
    # config file
    ("YAML syntax error", "models:\n  teacher: [unclosed\nloss: {", "config YAML", "line"),
    ("YAML that is a list", "- just\n- a list\n", "config YAML", "mapping"),
    ("unknown key", {"loss": {"temprature": 2.0}}, "loss.temprature", "accepted"),
    ("unknown section", {"optimizer": {"lr": 1.0}}, "optimizer", "accepted"),
    ("wrong type (text for int)", {"train": {"steps": "many"}}, "train.steps", "integer"),
    ("wrong type (list for float)", {"loss": {"temperature": [1, 2]}}, "loss.temperature", "number"),
    ("wrong type (text for bool)", {"lora": {"enabled": "maybe"}}, "lora.enabled", "true or false"),
    # run folder
    ("run name with ../", {"run": {"name": "../escape"}}, "run.name", "no path separators"),
    ("run name with a separator", {"run": {"name": "a/b"}}, "run.name", "no path separators"),
    ("run name taken", {"run": {"name": "taken", "runs_dir": "{root}/runs"}}, "run.name", "taken"),
    ("runs folder is a file", {"run": {"runs_dir": "{a_file}"}}, "run.runs_dir", "a folder you can write to"),
    ("runs folder under a file", {"run": {"runs_dir": "{a_file}/runs"}}, "run.runs_dir", "cannot be created"),
]


def _fill(value, paths: dict[str, Path]):
    if isinstance(value, str):
        return value.format(**{k: str(v) for k, v in paths.items()})
    if isinstance(value, list):
        return [_fill(v, paths) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, paths) for k, v in value.items()}
    return value


def case_yaml(change, paths: dict[str, Path], runs_dir: Path) -> str:
    """The YAML text of the tiny config with one case's change applied (or the case's own raw text)."""
    if isinstance(change, str):
        return change
    data = tiny_config(paths["teacher"], paths["student"], paths["text"], run={"runs_dir": str(runs_dir)}).to_dict()
    for section, values in _fill(change, paths).items():
        data.setdefault(section, {}).update(values)
    return yaml.safe_dump(data, sort_keys=False)


def test_at_least_thirty_distinct_cases():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


def test_the_tiny_config_passes(zoo, tmp_path):
    cfg = DistillConfig.from_yaml(case_yaml({"loss": {"hidden_weight": 1.0, "attn_weight": 1.0},
                                             "lora": {"enabled": True, "target_modules": ["q_proj", "v_proj"]}},
                                            zoo, tmp_path / "runs"))
    facts = preflight(cfg)
    assert facts["pairs"] == [(0, 1), (1, 3)] and facts["lora_targets"] == ["q_proj", "v_proj"]
    assert (facts["student_layers"], facts["teacher_layers"], facts["max_positions"]) == (2, 4, 512)
    assert not (tmp_path / "runs").exists(), "preflight creates nothing"


@pytest.mark.parametrize(("change", "field", "fragment"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_the_field(zoo, tmp_path, change, field, fragment):
    runs_dir = tmp_path / "runs"
    with pytest.raises(UserError) as refused:
        preflight(DistillConfig.from_yaml(case_yaml(change, zoo, runs_dir)))
    message = str(refused.value)
    assert field in message and fragment in message, message
    assert "\n" not in message.strip()
    assert not runs_dir.exists(), "nothing is created for a refused run"


@pytest.mark.slow
def test_the_built_in_pair_passes_on_every_preset():
    from workbench.config import load_preset, preset_names

    for name in preset_names():
        cfg = load_preset(name)
        cfg.data.dataset = "builtin:kjv"
        facts = preflight(cfg, "runs-not-created")
        assert facts["teacher_layers"] == 30 and 1 <= facts["student_layers"] < 30
        assert facts["max_positions"] >= cfg.data.seq_len
    assert not Path("runs-not-created").exists()


@pytest.mark.slow
def test_the_chat_small_student_keeps_at_most_half_of_the_teachers_non_embedding_parameters():
    import torch
    from transformers import AutoModelForCausalLM

    from workbench.config import load_preset
    from workbench.models.loading import count_parameters, load_config

    cfg = load_preset("chat-small")
    counts = {}
    for role, spec in (("teacher", cfg.models.teacher), ("student", cfg.models.student)):
        with torch.device("meta"):
            counts[role] = count_parameters(AutoModelForCausalLM.from_config(load_config(spec)))["non_embedding"]
    assert 0.45 < counts["student"] / counts["teacher"] <= 0.5, counts


CLI_CASES = ["unknown builtin", "missing file", "student layer out of range", "LoRA target not found",
             "hidden term across tokenizers", "run name with ../"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_refuses_with_one_line_and_no_run_folder(zoo, tmp_path, capsys, name):
    change, field, fragment = next(case[1:] for case in CASES if case[0] == name)
    runs_dir = tmp_path / "runs"
    config = tmp_path / "run.yaml"
    config.write_text(case_yaml(change, zoo, runs_dir))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and fragment in err[0], err
    assert err[0].startswith("workbench train: error: ")
    assert not runs_dir.exists()


def test_cli_process_exits_2_for_an_override_naming_a_missing_file(zoo, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(case_yaml({}, zoo, tmp_path / "runs"))
    done = subprocess.run([sys.executable, "-m", "workbench", "train", "--config", str(config),
                           f"data.dataset={tmp_path}/gone.jsonl"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.dataset" in lines[0] and "gone.jsonl" in lines[0]
    assert not (tmp_path / "runs").exists()


UPLOAD_LIMIT = "64kb"


@pytest.fixture(scope="module")
def small_upload_app(tmp_path_factory, tiny_teacher, tiny_student):
    """The whole app with an upload limit of 64 kB, served on loopback."""
    from workbench.app import build_app
    from workbench.commands.app import launch_options
    from workbench.runs.pool import ModelPool

    root = tmp_path_factory.mktemp("preflight-app")
    runs, exports = root / "runs", root / "exports"
    demo = build_app(runs_dir=str(runs), exports_dir=str(exports), teacher=str(tiny_teacher),
                     student=str(tiny_student), pool=ModelPool(max_models=2, device="cpu"))
    options = launch_options("127.0.0.1", free_port(), None, False, str(runs), str(exports), UPLOAD_LIMIT)
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **options)
    try:
        yield demo
    finally:
        demo.close()


API_CASES = ["misspelled derivation", "binary file", "duplicated student layer", "temperature absurd",
             "YAML syntax error", "LoRA target not found"]


def test_app_start_run_refuses_and_stays_up(small_upload_app, zoo):
    from gradio_client import Client

    client = Client(small_upload_app.local_url, verbose=False)
    runs_dir = Path(small_upload_app.ctx.runs_dir)
    before = sorted(runs_dir.iterdir())
    for name in API_CASES:
        change, field, fragment = next(case[1:] for case in CASES if case[0] == name)
        with pytest.raises(Exception) as refused:
            client.predict(case_yaml(change, zoo, runs_dir), api_name="/start_run")
        assert field in str(refused.value) and fragment in str(refused.value), (name, str(refused.value))
    assert sorted(runs_dir.iterdir()) == before, "no run folder is left behind"
    assert client.predict(api_name="/list_runs") == []


def test_upload_above_the_limit_is_refused(small_upload_app, tmp_path):
    base = small_upload_app.local_url.rstrip("/")

    def upload(size: int) -> tuple[int, str]:
        boundary = "kdboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"data.txt\"\r\n"
                "Content-Type: text/plain\r\n\r\n").encode() + b"a" * size + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{base}/gradio_api/upload", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    assert upload(10_000)[0] == 200
    code, detail = upload(200_000)
    assert code == 413 and "maximum allowed size" in detail, (code, detail)
