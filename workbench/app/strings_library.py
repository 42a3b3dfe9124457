"""Korean for the words the library writes and the app shows: report-card metrics and model labels, the
compatibility card, export formats, the chat stats line and the Runs tab's metrics; the messages of errors users
meet in the Setup form and at Start training are in `strings_errors`, those of multi-task runs in `strings_tasks`.

LIBRARY_KO is translated on the server only (`workbench.app.i18n.translator`), never handed to the browser: short
English words such as "text" would otherwise be swapped wherever a value happens to equal them. Its keys are the
library's English (its `Message` templates, `REPORT_COLUMNS` titles, `format_compatibility` labels) and keep its
`{fields}`; a missing entry shows the English. The config fields' help lines are in `strings_help`.
"""

from __future__ import annotations

from workbench.app.strings_errors import ERRORS_KO
from workbench.app.strings_tasks import TASKS_KO

LIBRARY_KO: dict[str, str] = {
    **TASKS_KO,
    **ERRORS_KO,
    # report card: metric names (workbench.analysis.report_card.REPORT_COLUMNS, workbench.analysis.comparison_plots.REPORT_BARS)
    "parameters": "파라미터 수",
    "non-embedding": "임베딩 제외 파라미터 수",
    "size (MB)": "크기 (MB)",
    "val perplexity": "검증 perplexity",
    "bits per byte": "바이트당 비트 (bits per byte)",
    "KL(teacher‖student)": "KL(교사‖학생)",
    "top-5 agreement": "top-5 일치율",
    "reverse KL on own answers (nats/token)": "자기 답변의 reverse KL (nats/토큰)",
    "teacher NLL of answers (nats/token)": "답변의 교사 모델 NLL (nats/토큰)",
    "mean answer length (tokens)": "평균 답변 길이 (토큰)",
    "tokens/s (batch 1)": "초당 토큰 (batch 1)",
    "time to first token (s)": "첫 토큰까지 시간 (초)",
    "peak memory (MB)": "최대 메모리 (MB)",
    "compression ×": "압축 배율 ×",
    "speedup ×": "속도 향상 ×",
    "parameters (M)": "파라미터 수 (M)",
    "size on disk (MB)": "디스크 크기 (MB)",
    "validation perplexity": "검증 perplexity",
    # figures (workbench.analysis.plots)
    "step": "단계",
    "{metric} by run": "run별 {metric}",
    "student {student} → teacher {teacher}": "학생 {student} → 교사 {teacher}",
    "invalid {pair}": "잘못된 쌍 {pair}",
    "{count} mapped pair(s)": "매핑된 쌍 {count}개",
    " · invalid: {pairs}": " · 잘못된 쌍: {pairs}",
    "teacher (entropy {entropy} nats)": "교사 모델 (엔트로피 {entropy} nats)",
    "student (entropy {entropy} nats)": "학생 모델 (엔트로피 {entropy} nats)",
    "next-token distribution at T = {t}": "T = {t}에서의 다음 토큰 분포",
    "probability": "확률",
    # attention figures (workbench.analysis.comparison_plots)
    "head-averaged": "head 평균",
    "head {head}": "head {head}",
    "|teacher − student| attention of every mapped pair ({head})": "매핑된 모든 쌍의 |교사 − 학생| attention ({head})",
    "Attention ({head}); grey cells are masked by causal attention":
        "Attention ({head}); 회색 칸은 causal attention에서 가려진 자리",
    "|teacher − student|": "|교사 − 학생|",
    "JS divergence (bits)": "JS divergence (bit)",
    "teacher entropy (bits)": "교사 모델 엔트로피 (bit)",
    "student entropy (bits)": "학생 모델 엔트로피 (bit)",
    "Per pair and head": "쌍·head별",
    # report card: model labels
    "distilled student": "증류한 학생 모델",
    "undistilled student": "증류 전 학생 모델",
    # compatibility card (workbench.analysis.compatibility.format_compatibility)
    "model": "모델",
    "pair": "두 모델",
    "architecture": "구조",
    "layers": "layer 수",
    "attention heads": "attention head",
    "vocabulary": "어휘 크기",
    "max positions": "최대 위치 수",
    " (keeps {kept} of {base})": " ({base}개 중 {kept} 유지)",
    "pruned": "가지치기",
    "MLP": "MLP",
    "heads": "head 수",
    "{axes}; non-embedding {before} → {after} ({share} of the base)":
        "{axes}; 임베딩 제외 {before} → {after} (기본 모델의 {share})",
    "{total} total, {trainable} trainable, {non_embedding} non-embedding":
        "전체 {total}, 학습 가능 {trainable}, 임베딩 제외 {non_embedding}",
    "{query} query, {kv} key/value (head dim {dim})": "query {query}개, key/value {kv}개 (head 차원 {dim})",
    "tokenizers": "tokenizer",
    "identical (same vocabulary, same ids for probe texts)": "동일 (같은 어휘, 예시 텍스트의 토큰 id도 같음)",
    "DIFFERENT: {problem}": "다름: {problem}",
    "logits widths": "logits 너비",
    "differ (teacher {teacher}, student {student}): distilled over the tokenizer's {real} real ids, the padding rows "
    "are left out": "다름 (교사 {teacher}, 학생 {student}): tokenizer의 실제 id {real}개로만 증류하고 padding 행은 "
                    "뺍니다",
    "shared vocabulary": "공유 어휘",
    "{shared} strings: {student_share} of the student's, {teacher_share} of the teacher's":
        "문자열 {shared}개: 학생 어휘의 {student_share}, 교사 어휘의 {teacher_share}",
    "token ratio": "토큰 비율",
    "{ratio} teacher tokens per student token on the probe texts; {exact} of student tokens matched by one teacher "
    "token": "예시 텍스트에서 학생 토큰 하나에 교사 토큰 {ratio}개; 학생 토큰의 {exact}가 교사 토큰 하나와 정확히 "
             "맞음",
    "methods": "쓸 수 있는 방법",
    "logit KD across tokenizers (loss.cross_tokenizer: aligned, the default, or uld) and CE apply;":
        "tokenizer가 달라도 logit KD(loss.cross_tokenizer: 기본값 aligned 또는 uld)와 CE는 됩니다;",
    "hidden-state and attention terms and the teacher cache need one tokenizer":
        "hidden state·attention 항과 teacher cache는 tokenizer가 같아야 합니다",
    "parameter ratio": "파라미터 비율",
    "{total} total, {non_embedding} non-embedding (student / teacher)": "전체 {total}, 임베딩 제외 {non_embedding} (학생 / 교사)",
    "training memory": "학습 메모리",
    "~{total} for batch {batch} x {seq_len} tokens (fp32, AdamW)":
        "batch {batch} x {seq_len} 토큰에 약 {total} (fp32, AdamW)",
    "student weights": "학생 가중치",
    "student grads": "학생 gradient",
    "optimizer states": "optimizer 상태",
    "teacher weights": "교사 가중치",
    "activations": "activation",
    "logits": "logits",
    # export formats (workbench.analysis.export_gguf, export_onnx, export, artefacts)
    "GGUF export: {arch} with {flag}=true is not supported": "GGUF 내보내기: {flag}=true인 {arch}는 지원하지 않습니다",
    "GGUF export: architecture {model_type!r} has no GGUF mapping here (supported: {supported}); export it as "
    "safetensors or onnx":
        "GGUF 내보내기: 아키텍처 {model_type!r}에는 여기서 GGUF 대응이 없습니다(지원: {supported}). safetensors나 "
        "onnx로 내보내세요",
    "GGUF export: format {fmt!r} unknown; choose one of {choices}":
        "GGUF 내보내기: 형식 {fmt!r}을(를) 알 수 없습니다. 다음 중에서 고르세요: {choices}",
    "GGUF export: rope_parameters.rope_type={rope_type!r} is not written by this exporter (default rope only)":
        "GGUF 내보내기: rope_parameters.rope_type={rope_type!r}은(는) 이 내보내기가 쓰지 않습니다(기본 rope만)",
    "GGUF export: tokenizer has id {top} but the model's vocab_size is {vocab_size}":
        "GGUF 내보내기: 토크나이저에 id {top}이(가) 있지만 모델의 vocab_size는 {vocab_size}입니다",
    "GGUF export: tokenizer model {kind!r} is not a byte-level BPE; the GGUF exporter writes byte-level BPE (GPT-2 "
    "style) vocabularies only":
        "GGUF 내보내기: 토크나이저 모델 {kind!r}은(는) byte-level BPE가 아닙니다. GGUF 내보내기는 byte-level "
        "BPE(GPT-2 방식) 어휘만 씁니다",
    "GGUF export: weight {key!r} of a {arch} model has no GGUF name":
        "GGUF 내보내기: {arch} 모델의 가중치 {key!r}에 GGUF 이름이 없습니다",
    "GGUF export: {key} has {rows} rows, not heads x head_dim = {heads} x {head_dim}; layers of different widths are "
    "not supported":
        "GGUF 내보내기: {key}의 행은 {rows}개로, heads x head_dim = {heads} x {head_dim}이 아닙니다. 층마다 폭이 "
        "다른 모델은 지원하지 않습니다",
    "ONNX export: architecture {model_type!r} is not supported here (supported: {supported}); export it as "
    "safetensors":
        "ONNX 내보내기: 아키텍처 {model_type!r}은(는) 여기서 지원하지 않습니다(지원: {supported}). safetensors로 "
        "내보내세요",
    "ONNX export: format {fmt!r} unknown; choose one of {choices}":
        "ONNX 내보내기: 형식 {fmt!r}을(를) 알 수 없습니다. 다음 중에서 고르세요: {choices}",
    "export format {fmt!r} unknown; choose one of {choices}":
        "내보내기 형식 {fmt!r}을(를) 알 수 없습니다. 다음 중에서 고르세요: {choices}",
    "{spec!r} is not a GGUF or ONNX export folder (no export.json naming one)":
        "{spec!r}은(는) GGUF나 ONNX 내보내기 폴더가 아닙니다(그 형식을 적은 export.json이 없습니다)",
    # chat stats line, training plot legends
    "generating": "생성 중",
    "{count} tokens": "토큰 {count}개",
    "{count} token": "토큰 {count}개",
    "training tokens/s": "학습 토큰/초",
    # what numbers were measured on (workbench.measured; the values stay as written)
    "{rows} held-out rows × {tokens} tokens of {source} (teacher-forced, KL at T = 1)":
        "{source}의 held-out {rows}행 × {tokens} 토큰 (teacher-forced, KL은 T = 1)",
    "{rows} held-out sequences × {tokens} tokens of {source}": "{source}의 held-out 시퀀스 {rows}개 × {tokens} 토큰",
    "{count} held-out prompts of {source} · sampled at T {temperature}, top-p {top_p}, up to {new_tokens} new tokens":
        "{source}의 held-out prompt {count}개 · T {temperature}, top-p {top_p}로 샘플링, 새 토큰 최대 {new_tokens}개",
    # the Runs tab's metrics (workbench.analysis.plots.METRICS): names and units
    "KD term": "KD 항",
    "nats/token × T²": "nats/토큰 × T²",
    "cross-entropy term": "CE 항",
    "nats/token": "nats/토큰",
    "total loss (weighted terms)": "전체 손실 (가중 합)",
    "loss": "손실",
    "hidden-state term": "hidden state 항",
    "distance": "거리",
    "attention term": "attention 항",
    "eval cross-entropy": "검증 CE",
    "perplexity": "perplexity",
    "bits/byte": "비트/바이트",
    "share (0-1)": "비율 (0-1)",
    "tokens/s": "토큰/초",
    "No data yet": "아직 데이터가 없습니다",
    # the report card's stages (workbench.analysis.report_card.evaluate_models)
    "loading {model}": "{model} 불러오는 중",
    "timing {model}": "{model} 속도 재는 중",
    "scoring {rows} validation rows (perplexity, KL, agreement)": "검증 행 {rows}개 채점 중 (perplexity, KL, 일치율)",
    "sampling and scoring answers to the held-out prompts": "held-out prompt에 답을 샘플링해 채점하는 중",
    "{stage} · about {seconds} s": "{stage} · 약 {seconds}초",
    "{stage} · about {seconds} s (about {total} s in all)": "{stage} · 약 {seconds}초 (전체 약 {total}초)",
}
