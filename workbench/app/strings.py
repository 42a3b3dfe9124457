"""The app's Korean text: English text (as written in the app, wrapped in `t()` or `tr()`) -> Korean.

Technical terms keep their usual form (KL, LoRA, temperature T, checkpoint, logits); the words are the ones Korean
distillation write-ups use (지식 증류, 교사 모델 / 학생 모델, 경량화). `{name}` fields are `str.format` values of
text made at run time. Words the library writes (report card, compatibility card, error messages) are in
`strings_library`, the config fields' help lines in `strings_help`.
"""

from __future__ import annotations

from workbench.app.strings_sweeps import SWEEPS_KO
from workbench.app.strings_tasks import TASKS_APP_KO

KO: dict[str, str] = {
    # header and tabs
    "# KD Workbench\nDistil a teacher language model into a smaller student: set up, train, watch every loss term, "
    "compare runs.": "# KD Workbench\n큰 교사 모델(teacher)의 지식을 작은 학생 모델(student)로 증류합니다. 설정하고, "
                     "학습하고, 손실 항을 하나하나 지켜보고, run끼리 비교하세요.",
    "Hugging Face hub: online. Hub ids typed in the app are downloaded; HF_HUB_OFFLINE=1 forces offline.":
        "Hugging Face hub: 온라인. 앱에 입력한 hub id는 내려받습니다. HF_HUB_OFFLINE=1이면 오프라인으로 고정합니다.",
    "Hugging Face hub: offline. Hub ids must already be in the local cache; built-in models and local folders work. "
    "HF_HUB_OFFLINE=0 forces a try.":
        "Hugging Face hub: 오프라인. hub id는 로컬 캐시에 이미 있어야 합니다. 내장 모델과 로컬 폴더는 그대로 됩니다. "
        "HF_HUB_OFFLINE=0이면 hub 접속을 시도합니다.",
    "Setup": "설정",
    "Train": "학습",
    "Runs": "실행 기록",
    "Chat": "채팅",
    "Attention": "Attention",
    "Report & export": "리포트·내보내기",
    "Learn": "배우기",
    "Sweeps": "압축 비교",
    # setup tab
    "Every control says what it does under its label; the **Learn** tab explains temperature, the divergences, loss "
    "weights, layer mapping and LoRA in plain words, each with its notebook.":
        "모든 항목 아래에 그 항목이 하는 일이 적혀 있습니다. **배우기** 탭은 temperature, 발산, 손실 가중치, "
        "layer 매핑, LoRA를 쉬운 말로 설명하고 각각 직접 실행해 볼 노트북을 알려 줍니다.",
    "Preset": "프리셋",
    "quick: minutes on a CPU; default: the measured recipe; chat: a student that talks; "
    "chat-small: one at half the teacher's size; multitask: chat and two tasks in one run; thorough: longer.":
        "quick: CPU에서 몇 분; default: 측정으로 고른 레시피; chat: 말하는 학생 모델; "
        "chat-small: 교사 모델의 절반 크기인 학생 모델; multitask: 한 run에서 채팅과 두 작업을 함께; thorough: 더 오래.",
    "Load YAML": "YAML 불러오기",
    "Save YAML": "YAML 저장",
    "Saved config": "저장된 설정",
    "1 · Models and data": "1 · 모델과 데이터",
    "2 · Loss and temperature": "2 · 손실과 temperature",
    "3 · Layer mapping (hidden-state and attention terms)": "3 · Layer 매핑 (hidden state·attention 항)",
    "4 · LoRA": "4 · LoRA",
    "5 · Training": "5 · 학습",
    "6 · On-policy distillation and generation quality (prompt/answer data)":
        "6 · On-policy 증류와 생성 품질 (prompt/answer 데이터)",
    "On-policy share λ": "On-policy 비율 λ",
    "Teacher writes the answers (seq_kd)": "교사 모델이 답을 씀 (seq_kd)",
    "Sampled tokens": "샘플링 토큰 수",
    "Sampling temperature": "샘플링 temperature",
    "Sampling top-p": "샘플링 top-p",
    "Prompts the teacher writes": "교사 모델이 쓰는 prompt 수",
    "Teacher-forced terms on": "Teacher-forced 항을 계산할 토큰",
    "Held-out prompts": "떼어 둔 prompt 수",
    "Generation eval": "생성 평가",
    "Also report to": "지표를 함께 보낼 곳",
    "Teacher": "교사 모델",
    "Student": "학생 모델",
    "Trust remote code": "원격 코드 신뢰 (trust_remote_code)",
    "Check pair": "두 모델 확인",
    "Compatibility card": "호환성 카드",
    "Dataset": "데이터셋",
    "Text column": "텍스트 열",
    "Upload data file": "데이터 파일 올리기",
    "Sequence length": "시퀀스 길이",
    "Validation fraction": "검증 데이터 비율",
    "Max sequences (0 = all)": "최대 시퀀스 수 (0 = 전부)",
    "Preview packed examples": "묶인 예시 미리 보기",
    "Packed examples": "묶인 예시",
    "Temperature T": "Temperature T",
    "Sample prompt for the preview": "미리 보기용 예시 prompt",
    "Text whose next token both models predict below; not used for training.":
        "두 모델이 다음 토큰을 예측할 텍스트입니다. 학습에는 쓰이지 않습니다.",
    "Show next-token preview": "다음 토큰 미리 보기",
    "Move the slider or press the button: the teacher's and the student's next-token distributions at T appear here.":
        "슬라이더를 움직이거나 버튼을 누르면 T에서의 교사·학생 모델의 다음 토큰 분포가 여기 나타납니다.",
    "Next-token distributions at T": "T에서의 다음 토큰 분포",
    "Divergence": "발산 (divergence)",
    "β (JSD)": "β (JSD)",
    "α (skew)": "α (skew)",
    "Scale by T²": "T² 곱하기",
    "CE weight": "CE 가중치",
    "KD weight": "KD 가중치",
    "Hidden weight": "Hidden 가중치",
    "Attention weight": "Attention 가중치",
    "Hidden distance": "Hidden 거리",
    "Attention distance": "Attention 거리",
    "Mapping strategy": "매핑 방식",
    "Custom pairs (student layer, teacher layer; 'emb' = embeddings)":
        "직접 지정한 쌍 (학생 layer, 교사 layer; 'emb' = 임베딩)",
    "Student layer": "학생 layer",
    "Teacher layer": "교사 layer",
    "+ Add pair": "+ 쌍 추가",
    "Layer mapping": "Layer 매핑",
    "Train LoRA adapters": "LoRA adapter 학습",
    "r": "r",
    "alpha": "alpha",
    "dropout": "dropout",
    "Target modules": "대상 모듈",
    "Steps": "학습 단계 수",
    "Batch size": "배치 크기",
    "Grad accumulation": "Gradient 누적",
    "Learning rate": "학습률",
    "Warmup steps": "Warmup 단계",
    "Eval every": "평가 주기",
    "Checkpoint every": "Checkpoint 주기",
    "Seed": "시드(seed)",
    "Device": "장치",
    "Precision": "정밀도",
    "Run name (optional)": "Run 이름 (선택)",
    "Heal the pruned student's gaps before training": "학습 전에 잘라 낸 학생 모델의 틈 메우기 (healing)",
    "Command the Train button runs (as a shell command)": "학습 버튼이 실행하는 명령 (셸 명령)",
    "Ready? Open the **Train** tab and press **Start training**; this form is what it runs.":
        "준비됐나요? **학습** 탭에서 **학습 시작**을 누르세요. 이 설정 그대로 실행됩니다.",
    "compatible pair": "호환되는 쌍",
    "same tokenizer: logit distillation works.": "tokenizer가 같습니다: logit 증류가 가능합니다.",
    "not distillable as is": "이대로는 증류할 수 없음",
    "The tokenizers differ; see the card.": "tokenizer가 다릅니다. 카드를 보세요.",
    "two tokenizers": "서로 다른 tokenizer",
    "Tokenizer alignment": "tokenizer 정렬",
    "Sample text": "예시 문장",
    "Tokenized by both models; each coloured box is a span both cover.":
        "두 모델이 모두 토큰화합니다. 색칠된 상자 하나가 양쪽이 똑같이 덮는 구간 하나입니다.",
    "Show alignment": "정렬 보기",
    "Skip first position": "첫 위치 빼기",
    "Across tokenizers": "tokenizer가 다를 때",
    "logit distillation aligns the two tokenizations (see the alignment below).":
        "logit 증류가 두 토큰화를 맞춰 정렬합니다(아래 정렬 보기 참고).",
    "Cannot read the models' layer counts: {error}": "모델의 layer 수를 읽을 수 없습니다: {error}",
    "invalid pairs": "잘못된 쌍",
    "fix before starting:": "시작하기 전에 고치세요:",
    "{count} pair(s)": "{count}개 쌍",
    "student has {student} layers, teacher {teacher}.": "학생 모델은 {student}개 layer, 교사 모델은 {teacher}개입니다.",
    "Type a student layer and a teacher layer (numbers from 0, or emb) before adding a pair.":
        "쌍을 추가하기 전에 학생 layer와 교사 layer(0부터 시작하는 번호 또는 emb)를 입력하세요.",
    "Preview needs both models: {error}": "미리 보기에는 두 모델이 모두 필요합니다: {error}",
    "At **T = {t}**: teacher entropy **{te}** nats, student entropy **{se}** nats; teacher top token `{token}` "
    "at {share}.": "**T = {t}**에서: 교사 모델 엔트로피 **{te}** nats, 학생 모델 엔트로피 **{se}** nats; 교사 "
                   "모델의 1순위 토큰 `{token}`의 확률 {share}.",
    # train tab
    "▶ Start training": "▶ 학습 시작",
    "■ Stop (saves a checkpoint)": "■ 중지 (checkpoint 저장)",
    "⟳ Resume": "⟳ 이어서 학습",
    "Watching run": "보고 있는 run",
    "Log scale for the loss terms": "손실 항을 로그 스케일로",
    "Training curves": "학습 곡선",
    "Train KD is measured at the run's temperature T (times T² when 'Scale by T²' is on); eval KL at T = 1 on the "
    "validation split, where perplexity and top-1 agreement are measured too. These are teacher-forced numbers: the "
    "student reads the real text. What it writes on its own is below.":
        "학습 KD는 run의 temperature T에서 잽니다('T² 곱하기'가 켜져 있으면 T²를 곱한 값). 평가 KL은 검증 "
        "데이터에서 T = 1로 재며, perplexity와 top-1 일치율도 같은 데이터에서 잽니다. 모두 teacher-forced "
        "숫자입니다. 학생 모델이 실제 텍스트를 읽으며 예측한 값이지요. 학생 모델이 스스로 쓴 글은 아래에서 "
        "봅니다.",
    "Generation: what the student writes": "생성: 학생 모델이 쓰는 글",
    "Generation quality on held-out prompts": "학습에 쓰지 않은 prompt에서의 생성 품질",
    "**Latest sampled answer**, each token coloured by how much the teacher disagrees with it":
        "**가장 최근에 샘플링한 답변**: 교사 모델이 각 토큰에 얼마나 동의하지 않는지 색으로 표시합니다",
    "run.log (tail)": "run.log (마지막 부분)",
    "No run yet. Set up on the **Setup** tab, then press **Start training**.":
        "아직 run이 없습니다. **설정** 탭에서 준비한 뒤 **학습 시작**을 누르세요.",
    "step {step} / {total} · {fraction}": "단계 {step} / {total} · {fraction}",
    "Run **{run}**": "실행 **{run}**",
    "about {time} left": "약 {time} 남음",
    "sampling {share} of the step at {speed} tokens/s, completions of {length} tokens":
        "단계 시간의 {share}를 샘플링에 씀, {speed} tokens/s, 답변 길이 {length} 토큰",
    "this run executes code shipped with its models.": "이 run은 모델과 함께 배포된 코드를 실행합니다.",
    "stopping (saving a checkpoint)…": "중지하는 중 (checkpoint 저장 중)…",
    "Waiting for the device: position **{position}** in the queue.": "장치를 기다리는 중: 대기열 **{position}**번째.",
    "Exit code **{code}**: {error}": "종료 코드 **{code}**: {error}",
    "see the log": "로그를 보세요",
    "No checkpoint was saved, so this run cannot be resumed; start it again.":
        "저장된 checkpoint가 없어 이어서 학습할 수 없습니다. 새로 시작하세요.",
    "queued": "대기 중",
    "running": "실행 중",
    "stopping": "중지하는 중",
    "stopped": "중지됨",
    "failed": "실패",
    "finished": "완료",
    "idle": "대기",
    "starting": "시작하는 중",
    "training": "학습 중",
    "loading data": "데이터 불러오는 중",
    "loading student": "학생 모델 불러오는 중",
    "loading teacher": "교사 모델 불러오는 중",
    "teacher writing prompts": "교사 모델이 prompt 쓰는 중",
    "healing": "틈 메우는 중 (healing)",
    "first step": "첫 단계 계산 중",
    "evaluating": "평가 중",
    "scoring held-out answers": "held-out 답변 채점 중",
    "saving a checkpoint": "checkpoint 저장 중",
    "final evaluation": "최종 평가 중",
    "saving the student": "학생 모델 저장 중",
    "Each token is shaded by the reverse KL between the student's and the teacher's next-token predictions, both "
    "reading the same text so far (the student's own answer): pale = given that text, the teacher would predict much "
    "the same token; red = {full} nats or more. It measures agreement token by token, not whether the answer fits "
    "the question: a fluent answer on the wrong topic can be mostly pale. Hover for the value.":
        "각 토큰은 학생 모델과 교사 모델이 같은 앞 글(학생 모델 자신의 답변)을 읽고 낸 다음 토큰 예측 사이의 "
        "reverse KL로 칠해집니다. 옅을수록 그 글 다음에 교사 모델도 거의 같은 토큰을 예측한다는 뜻이고, 빨간색은 "
        "{full} nats 이상입니다. 토큰 하나하나의 일치도를 잴 뿐, 답이 질문에 맞는지는 재지 않습니다. 주제를 벗어난 "
        "매끄러운 답도 대부분 옅게 보일 수 있습니다. 마우스를 올리면 값이 보입니다.",
    "No sampled answer yet: it appears with the first on-policy batch or generation eval.":
        "아직 샘플링한 답변이 없습니다. 첫 on-policy 배치나 생성 평가 때 나타납니다.",
    "on-policy batch": "on-policy 배치",
    "generation eval": "생성 평가",
    "Step {step} · {source} · mean reverse KL {mean} nats/token":
        "단계 {step} · {source} · 평균 reverse KL {mean} nats/토큰",
    "Prompt": "프롬프트",
    "No generation eval yet. With generation eval on, the student answers held-out prompts every eval and these "
    "numbers say how it talks (teacher-forced numbers above do not).":
        "아직 생성 평가가 없습니다. 생성 평가를 켜면 평가 때마다 학생 모델이 학습에 쓰지 않은 prompt에 답하고, "
        "이 숫자들이 학생 모델이 실제로 어떻게 말하는지 보여 줍니다(위의 teacher-forced 숫자로는 알 수 없습니다).",
    "Step {step}": "단계 {step}",
    "Measured on": "측정 대상",
    "reverse KL to the teacher": "교사 모델에 대한 reverse KL",
    "teacher NLL": "교사 모델 NLL",
    "repeated 4-grams": "반복된 4-gram",
    "empty answers": "빈 답변",
    "mean length": "평균 길이",
    # training figure
    "loss terms (train; eval dashed)": "손실 항 (학습; 평가는 점선)",
    "eval on the validation split": "검증 데이터 평가",
    "learning rate": "학습률",
    "tokens / s": "토큰 / 초",
    "total": "합계",
    "hidden": "hidden",
    "attention": "attention",
    "train": "학습",
    "eval KL (T = 1)": "평가 KL (T = 1)",
    "student perplexity": "학생 모델 perplexity",
    "teacher perplexity": "교사 모델 perplexity",
    "top-1 agreement": "top-1 일치율",
    "perplexity (log)": "perplexity (로그)",
    "nats per answer token": "답변 토큰당 nats",
    "share of answers": "답변 비율",
    "answer length (tokens)": "답변 길이 (토큰)",
    # runs tab
    "↻ Refresh": "↻ 새로고침",
    "All runs in the runs folder, newest first. Select several to compare. Generation: reverse KL to the teacher on "
    "the student's own answers (nats per token) · share of repeated 4-grams, from the latest generation eval. Hover "
    "a model to see its full spec.":
        "runs 폴더의 모든 run, 최신순입니다. 여러 개를 골라 비교하세요. 생성 열: 학생 모델 자신의 답변에 대한 교사 "
        "모델 기준 reverse KL(토큰당 nats) · 반복된 4-gram 비율, 가장 최근 생성 평가 기준. 모델에 마우스를 "
        "올리면 전체 spec이 보입니다.",
    "run": "run",
    "steps": "단계",
    "best eval loss": "최저 평가 손실",
    "student ppl": "학생 모델 ppl",
    "generation (rKL · rep4)": "생성 (rKL · rep4)",
    "status": "상태",
    "started": "시작",
    "duration": "걸린 시간",
    "teacher": "교사 모델",
    "student": "학생 모델",
    "KD settings": "KD 설정",
    "Compare runs": "비교할 run",
    "Metric": "지표",
    "Log scale": "로그 스케일",
    "Overlay": "겹쳐 보기",
    "Config fields that differ": "서로 다른 설정 항목",
    "Run to delete": "삭제할 run",
    "Delete…": "삭제…",
    "Yes, delete it": "네, 삭제합니다",
    "Cancel": "취소",
    "Choose a run to delete first": "먼저 삭제할 run을 고르세요",
    "Delete run **{run}** and everything in its folder? This cannot be undone.":
        "run **{run}**과 그 폴더의 모든 것을 삭제할까요? 되돌릴 수 없습니다.",
    # chat tab
    "Same prompt, same sampling, every model streaming at once. Stats under each answer.":
        "같은 prompt, 같은 샘플링 설정으로 모든 모델이 동시에 답합니다. 답변 아래에 통계가 나옵니다.",
    "Model spec or folder.": "모델 spec 또는 폴더.",
    "Distilled student": "증류한 학생 모델",
    "Latest finished run's student (the default student if none)":
        "가장 최근에 끝난 run의 학생 모델 (없으면 기본 학생 모델)",
    "A run's final student or any checkpoint.": "run의 최종 학생 모델 또는 checkpoint.",
    "Also the undistilled student": "증류 전 학생 모델도 함께",
    "Undistilled student": "증류 전 학생 모델",
    "The picked run's starting point": "고른 run의 출발점",
    "By default the model the picked run started from (its config's models.student); or any model spec, or an "
    "exported GGUF / ONNX folder run in its own runtime.":
        "기본값은 고른 run이 출발한 모델(그 설정의 models.student)입니다. 다른 모델 spec이나, 자기 런타임에서 "
        "돌아가는 내보낸 GGUF / ONNX 폴더도 쓸 수 있습니다.",
    "↻ Runs": "↻ Run 목록",
    "Temperature": "Temperature",
    "0 = greedy": "0 = greedy (늘 가장 확률 높은 토큰)",
    "not used": "사용 안 함",
    "Each column keeps its own conversation: its model reads the earlier questions and answers of that column before "
    "the new one. **Clear history** starts afresh.":
        "각 열은 자기 대화를 이어 갑니다. 모델은 새 질문 앞에 그 열의 이전 질문과 답을 함께 읽습니다. **대화 지우기**로 "
        "새로 시작합니다.",
    "(no text: the model ended its answer at once)": "(텍스트 없음: 모델이 바로 답을 끝냈습니다)",
    "(no finished run yet: the undistilled default student)": "(완료된 run이 아직 없어 증류 전 기본 학생 모델)",
    "Error": "오류",
    "The built-in models learned English only: they answer in English, and a prompt in another language (Korean too) "
    "gets a garbled answer.":
        "내장 모델은 영어만 배웠습니다. 답은 영어로 하고, 다른 언어(한국어 포함)로 쓴 prompt에는 뒤섞인 답을 냅니다.",
    "Max new tokens": "최대 생성 토큰 수",
    "Colour the student's answer by disagreement": "학생 모델 답변을 불일치 정도로 색칠",
    "After each answer, shade every token of the distilled student's answer by the teacher's disagreement with it "
    "(per-token reverse KL).":
        "답변이 끝날 때마다 증류한 학생 모델의 답변 토큰을 교사 모델과의 불일치(토큰별 reverse KL)로 칠합니다.",
    "Ask all models…": "모든 모델에게 물어보세요…",
    "Send": "보내기",
    "Stop": "중지",
    "Clear history": "대화 지우기",
    "prompt is empty; type a message": "prompt가 비어 있습니다. 메시지를 입력하세요",
    "Distilled student's last answer · mean reverse KL {mean} nats/token over its {count} text tokens (the "
    "end-of-turn token, counted under the column, is not coloured)":
        "증류한 학생 모델의 마지막 답변 · 본문 토큰 {count}개의 평균 reverse KL {mean} nats/토큰 (열 아래 토큰 수에 "
        "세는 답변 끝 토큰은 색칠하지 않습니다)",
    # attention tab
    "Text": "텍스트",
    "Token cap": "최대 토큰 수",
    "Longer texts are cut (a note says so).": "더 긴 텍스트는 잘립니다 (메모로 알려 줍니다).",
    "Undistilled, a run's final student or any checkpoint: before/after in one click.":
        "증류 전 모델, run의 최종 학생 모델, 또는 checkpoint: 한 번에 전후를 비교합니다.",
    "'from run' uses the run's own mapping; a student made by dropping teacher layers is compared with the layers it "
    "was copied from (source).":
        "'from run'은 run의 매핑을 씁니다. 교사 모델의 layer를 잘라 만든 학생 모델은 복사되어 온 layer와 "
        "비교합니다 (source).",
    "Custom pairs": "직접 지정한 쌍",
    "Only for the custom mapping.": "custom 매핑에서만 씁니다.",
    "Compare attention": "Attention 비교",
    "Layer pair": "Layer 쌍",
    "All pairs": "모든 쌍",
    "Head": "Head",
    "Head-averaged": "Head 평균",
    "Press **Compare attention** to capture both models' maps (eager attention).":
        "**Attention 비교**를 누르면 두 모델의 attention map을 가져옵니다 (eager attention).",
    "Teacher · student · |difference|": "교사 · 학생 · |차이|",
    "JS divergence and entropy per pair and head": "쌍·head별 JS divergence와 엔트로피",
    # report tab
    "Student to report": "평가할 학생 모델",
    "A run (with its undistilled start), a checkpoint or a spec.": "run(증류 전 모델 포함), checkpoint 또는 spec.",
    "Validation sequences": "검증 시퀀스 수",
    "0: a run's own eval rows, the same as its Train tab (else 16).": "0: run이 학습 중 평가에 쓴 데이터 그대로(학습 탭과 같은 숫자), 아니면 16개.",
    "Generated tokens (speed)": "생성 토큰 수 (속도 측정)",
    "Recompute": "다시 계산",
    "Ignore a saved eval.json.": "저장된 eval.json을 쓰지 않습니다.",
    "Evaluate": "평가",
    "Press **Evaluate** for the report card: sizes first (each model loaded), then quality on validation rows, then "
    "speed, then answers to held-out prompts, each shown as it finishes; the bar names each stage and, for a run, about how long it takes (estimated from the run's "
    "own timings; minutes on a CPU for the built-in pair).":
        "**평가**를 누르면 리포트 카드가 나옵니다. 먼저 모델마다 불러와 크기를, 이어서 검증 행으로 품질을, 그다음 "
        "속도를, 마지막으로 held-out prompt에 대한 답을 재며, 끝나는 대로 표에 보여 줍니다. 진행 막대가 단계마다 이름을 알려 주고, run이면 걸릴 시간도 알려 줍니다 (run이 학습하며 잰 "
        "시간으로 추정; 내장 두 모델은 CPU에서 몇 분).",
    "Report card": "리포트 카드",
    "(press Evaluate: the report card appears here)": "(평가를 누르면 여기에 리포트 카드가 나옵니다)",
    "**{source}** · evaluated {created} in {seconds} s": "**{source}** · {created}에 {seconds}초 동안 평가",
    "Results so far; under way: {stage}": "지금까지의 결과입니다. 진행 중: {stage}",
    "Teacher-forced numbers (perplexity, KL, agreement): {rows}, {tokens} tokens.":
        "Teacher-forced 숫자(perplexity, KL, 일치율): {rows}, 토큰 {tokens}개.",
    "Generated numbers (reverse KL on own answers, repeated 4-grams, ...): {what}.":
        "생성 지표(자기 답변에 대한 reverse KL, 반복된 4-gram 등): {what}.",
    "### Export\nThe merged student as safetensors + tokenizer + model card (README.md), checked by reloading it with "
    "`AutoModelForCausalLM.from_pretrained`.":
        "### 내보내기\n합친 학생 모델을 safetensors + tokenizer + 모델 카드(README.md)로 저장하고, "
        "`AutoModelForCausalLM.from_pretrained`로 다시 불러 확인합니다.",
    "Run or checkpoint to export": "내보낼 run 또는 checkpoint",
    "Folder": "폴더",
    "Zip for download": "zip으로 내려받기",
    "Overwrite": "덮어쓰기",
    "Export": "내보내기",
    "Download": "내려받기",
    "Exported {what}{how} from `{source}` to `{folder}`  \nReload check: max |logit diff| {diff}  \nFiles: {files}":
        "{what}{how}을(를) `{source}`에서 `{folder}`로 내보냈습니다  \n다시 불러 확인: 최대 |logit 차이| {diff}  \n"
        "파일: {files}",
    "run **{run}**": "실행 **{run}**",
    "run **{run}**, checkpoint **{checkpoint}**": "실행 **{run}**, checkpoint **{checkpoint}**",
    "the student picked for the report": "리포트에서 고른 학생 모델",
    "the latest finished run": "가장 최근에 완료된 run",
    "By default the student picked for the report above.": "기본값은 위 리포트에서 고른 학생 모델입니다.",
    "The student picked for the report above": "위 리포트에서 고른 학생 모델",
    "Run or checkpoint to export: {spec!r} is not a run folder or a checkpoint inside one":
        "내보낼 run 또는 checkpoint: {spec!r}은(는) run 폴더도, run 안의 checkpoint도 아닙니다",
    "Or as a file for another runtime: GGUF (f16, q8_0, q4_0) for llama.cpp / Ollama, ONNX (float32, int8) for ONNX "
    "Runtime; Llama and Qwen2 students. The size on disk and the reload check are shown after the export.":
        "또는 다른 런타임용 파일로: llama.cpp / Ollama용 GGUF(f16, q8_0, q4_0), ONNX Runtime용 ONNX(float32, "
        "int8). Llama와 Qwen2 학생 모델을 지원합니다. 디스크 크기와 다시 불러 확인한 결과는 내보낸 뒤에 보입니다.",
    "Format": "형식",
    "{fmt}: {file}, {size} MB on disk; relative logit error {error} (tiny-model test bound {bound}), read back "
    "with {loader}":
        "{fmt}: {file}, 디스크에서 {size} MB; 상대 logit 오차 {error}(작은 모델 테스트 한계 {bound}), {loader}로 다시 읽음",
    "Exported artefacts": "내보낸 아티팩트",
    "GGUF / ONNX exports to score beside the student, each in its own runtime.":
        "학생 모델 옆에서 채점할 GGUF / ONNX 내보내기. 각각 자기 런타임에서 잽니다.",
    # learn tab
    "New to distillation? Read these in order. Every control on the Setup tab also has a one-line explanation under "
    "it, and each topic below names a notebook in `notebooks/` that runs the idea.":
        "지식 증류가 처음이라면 차례대로 읽어 보세요. 설정 탭의 모든 항목 아래에도 한 줄 설명이 있고, 아래 각 "
        "주제는 그 내용을 직접 실행해 볼 `notebooks/`의 노트북을 알려 줍니다.",
    # library text shown by the app, and the words of the student pickers (runs' names stay)
    "Tokenizer alignment: {error}": "tokenizer 정렬: {error}",
    "# not valid yet: {error}": "# 아직 유효하지 않음: {error}",
    "Dataset preview failed: {error}": "데이터셋 미리 보기 실패: {error}",
    "Choose a teacher and a student to see their compatibility card.": "교사 모델과 학생 모델을 고르면 호환성 카드가 보입니다.",
    "Cannot read this pair: {error}": "이 두 모델을 읽을 수 없습니다: {error}",
    "Teacher `{teacher}` · student `{student}` · mapping {strategy} ({pairs} pairs) · {tokens} tokens":
        "교사 모델 `{teacher}` · 학생 모델 `{student}` · 매핑 {strategy} ({pairs}쌍) · 토큰 {tokens}개",
    "Head {head}": "Head {head}",
    "Hide the first position": "첫 위치 숨기기",
    "Many models send most of their attention to the first token; hiding it gives the colour scale to the other "
    "positions.": "많은 모델이 attention 대부분을 첫 토큰에 보냅니다. 숨기면 색 범위를 나머지 위치가 씁니다.",
    "metric": "지표",
    "student {student} ↔ teacher {teacher}": "학생 {student} ↔ 교사 {teacher}",
    "student:teacher, e.g. 0:1, 3:11": "학생:교사, 예: 0:1, 3:11",
    "student layer": "학생 layer",
    "teacher layer": "교사 layer",
    "Double-click a cell (or select it and press Enter) before typing: a key pressed on a cell that is only selected "
    "is lost. The boxes below add a whole pair.":
        "칸을 더블클릭하거나(또는 고른 뒤 Enter) 입력하세요. 고르기만 한 칸에 누른 첫 키는 사라집니다. 아래 칸으로 "
        "쌍 하나를 한 번에 추가할 수도 있습니다.",
    "{:.3f} nats/token": "{:.3f} nats/토큰",
    "{:.1f} tokens": "{:.1f} 토큰",
    "field": "설정 항목",
    "(select two or more runs)": "(run을 두 개 이상 고르세요)",
    "(no config field differs, besides the run's name)": "(run 이름 말고는 다른 설정 항목이 없습니다)",
    "These runs were measured on different rows, so their curves are not directly comparable:":
        "이 run들은 서로 다른 데이터 행에서 측정되어 곡선을 그대로 비교할 수 없습니다:",
    "run {run!r} is still active; stop it before deleting": "run {run!r}: 아직 실행 중입니다. 지우기 전에 중지하세요",
    "from run": "run의 매핑",
    "no finished run yet: the default pair": "완료된 run이 아직 없어 기본 두 모델을 평가함",
    "teacher vs `{spec}`": "교사 모델 vs `{spec}`",
    "run {run} (from eval.json)": "run {run} (eval.json에서 읽음)",
    "run {run} (evaluated now; eval.json written)": "run {run} (지금 평가함; eval.json 저장)",
    "export needs a run: no finished run yet; pick a run or checkpoint":
        "내보낼 run이 없습니다: 완료된 run이 아직 없으니 run이나 checkpoint를 고르세요",
    "undistilled:": "증류 전:",
    "final student (queued)": "최종 학생 모델 (대기 중)",
    "final student (running)": "최종 학생 모델 (실행 중)",
    "final student (stopping)": "최종 학생 모델 (중지하는 중)",
    "final student (stopped)": "최종 학생 모델 (중지됨)",
    "final student (failed)": "최종 학생 모델 (실패)",
    "final student (finished)": "최종 학생 모델 (완료)",
    **SWEEPS_KO,
    **TASKS_APP_KO,
}
