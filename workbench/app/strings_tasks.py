"""Korean for the messages of multi-task runs (`data.tasks`: `workbench.config.TaskConfig`, `workbench.data.tasks`);
merged into `workbench.app.strings_library.LIBRARY_KO` and, like it, translated on the server only. Keys keep the
library's `{fields}`. `TASKS_APP_KO`: the app's task editor, per-task curves and columns, merged into
`workbench.app.strings.KO`."""

from __future__ import annotations

TASKS_KO: dict[str, str] = {
    "1-32 letters, digits, '_', '-' or '.', starting with a letter or digit":
        "영문자·숫자로 시작하는 1-32자의 영문자, 숫자, '_', '-', '.'",
    "> 0 where ce_weight is 0 (the task would teach nothing)": "ce_weight가 0이면 0보다 커야 함 (그 작업에서 배울 것이 없음)",
    "a name no other task has": "다른 작업과 겹치지 않는 이름",
    "a non-empty list of label words (classify), e.g. [story, steps, definition, comparison]":
        "비어 있지 않은 레이블 단어 목록 (classify), 예: [story, steps, definition, comparison]",
    "a question holding {{text}}": "{{text}}를 포함한 질문",
    "data.tasks[{name}].kind: {kind} needs prompt/answer data (builtin:chat, builtin:kjv-book, or a file with prompt "
    "and answer columns); {source!r} is plain text, so use kind lm":
        "data.tasks[{name}].kind: {kind}에는 prompt/answer 데이터가 필요합니다 (builtin:chat, builtin:kjv-book, 또는 "
        "prompt와 answer 열이 있는 파일). {source!r}은(는) 일반 텍스트이므로 kind lm을 쓰세요",
    "data.tasks[{name}].labels: the data holds labels outside the label set: {outside} (the set is {labels})":
        "data.tasks[{name}].labels: 데이터에 레이블 집합 밖의 레이블이 있습니다: {outside} (집합: {labels})",
    "data.tasks[{name}].name": "data.tasks[{name}].name",
    "data.tasks[{name}].source: a classify task reads builtin:chat-kind or a JSONL/CSV/parquet file or folder; "
    "{source!r} is neither":
        "data.tasks[{name}].source: classify 작업은 builtin:chat-kind 또는 JSONL/CSV/parquet 파일이나 폴더를 읽습니다. "
        "{source!r}은(는) 어느 쪽도 아닙니다",
    "data.tasks[{name}].source: {file} is not JSONL, CSV or parquet":
        "data.tasks[{name}].source: {file}은(는) JSONL, CSV, parquet 파일이 아닙니다",
    "data.tasks[{name}].source: {source!r} gives too little text for two sequences (train and validation) at "
    "data.seq_len={seq_len}":
        "data.tasks[{name}].source: {source!r}의 텍스트가 data.seq_len={seq_len}에서 시퀀스 두 개(학습과 검증)를 "
        "만들기에 부족합니다",
    "data.tasks[{name}].{field}: {file} has no column {column!r}; columns found: {found}":
        "data.tasks[{name}].{field}: {file}에 {column!r} 열이 없습니다. 있는 열: {found}",
    "distinct label words": "서로 다른 레이블 단어",
    "accuracy": "정확도",
    "exact match": "exact match",
    "token F1": "토큰 F1",
    "held-out score (accuracy; token F1 for qa)": "떼어 둔 항목의 점수 (정확도; qa는 토큰 F1)",
    "perplexity on the task's validation rows": "작업 검증 행의 perplexity",
    "empty with data.tasks (a cache holds the teacher's logits on data.dataset only)":
        "data.tasks를 쓸 때는 비워 두세요 (캐시는 data.dataset에 대한 교사 모델의 logit만 담습니다)",
    "the column holding each row's label (classify)": "각 행의 레이블이 든 열 (classify)",
}

TASKS_APP_KO: dict[str, str] = {
    "Tasks: several in one run (multi-task distillation)": "작업: 한 run에서 여러 작업 (multi-task 증류)",
    "Tasks (one row each; an empty cell takes the default)": "작업 (한 행에 하나; 빈 칸은 기본값)",
    "Task name": "작업 이름",
    "Task source": "작업 데이터 출처",
    "Task kind": "작업 종류",
    "Labels (comma-separated)": "레이블 (쉼표로 구분)",
    "Own loss mix": "작업별 손실 가중치",
    "Off: the task takes the run's CE and KD weights (section 2).": "끄면 run의 CE·KD 가중치(2번 항목)를 씁니다.",
    "Sampling weight": "샘플링 가중치",
    "Task CE weight": "작업 CE 가중치",
    "Task KD weight": "작업 KD 가중치",
    "+ Add task": "+ 작업 추가",
    "Task to remove": "뺄 작업",
    "Remove task": "작업 빼기",
    "No tasks: the run trains on the dataset above alone.": "작업 없음: 위의 데이터셋만으로 학습합니다.",
    "{count} task(s), each batch's rows drawn {shares}; the dataset above is not used.":
        "작업 {count}개, 각 batch의 행을 {shares} 비율로 뽑습니다. 위의 데이터셋은 쓰지 않습니다.",
    "Not valid yet: {error}": "아직 올바르지 않음: {error}",
    "task scores": "작업별 점수",
    "Per-task scores": "작업별 점수",
    "Per-task scores: the run's evaluation at step {step}, on each task's held-out items (the undistilled student is "
    "not scored on them).": "작업별 점수: 이 run의 {step}단계 평가, 각 작업의 떼어 둔 항목으로 잰 값 (증류 전 학생 모델은 "
                            "채점하지 않았습니다).",
}
