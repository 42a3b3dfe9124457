"""Korean for the help line under each Setup control (`workbench.config` field help), keyed by the field
("section.key"); like LIBRARY_KO, translated on the server."""

from __future__ import annotations

# the help line under each Setup control (`workbench.config` field help), keyed by the field
HELP_KO: dict[str, str] = {
    "models.teacher": "교사 모델 spec: builtin:이름, Hugging Face hub id, 또는 로컬 폴더.",
    "models.student": "학생 모델 spec: 교사 모델과 같은 형식에 BASE?prune=even&layers=10이나 "
                      "BASE?fresh&layers=4&hidden=256 같은 변형을 붙일 수 있습니다 (README 'Model specs' 참고). "
                      "교사 모델과의 크기 비율이 너무 작으면 과도한 압축으로 성능이 떨어집니다.",
    "models.trust_remote_code": "hub 저장소에 들어 있는 모델 코드를 실행합니다. 믿을 수 있는 저장소가 아니면 끄세요.",
    "data.dataset": "학습 텍스트: builtin:chat, builtin:kjv, 로컬 .txt/.jsonl/.csv/.parquet 파일이나 폴더, 또는 "
                    "datasets hub id. 데이터가 다양할수록 학생 모델이 교사 모델을 더 넓게 배웁니다.",
    "data.text_column": "JSONL/CSV/parquet 데이터에서 텍스트가 든 열.",
    "data.seq_len": "묶인 학습 시퀀스 하나의 토큰 수.",
    "data.val_fraction": "검증용으로 떼어 두는 시퀀스 비율.",
    "data.max_sequences": "묶인 시퀀스 수 상한(학습 + 검증); 0이면 전부.",
    "loss.divergence": "교사 모델과 학생 모델의 logits 사이 발산.",
    "loss.temperature": "두 분포를 부드럽게 만듭니다: p = softmax(logits / T). 1이면 그대로입니다.",
    "loss.beta": "jsd와 kl_mix에서 reverse KL 쪽 비중: 0은 forward KL, 1은 reverse KL. jsd는 0과 1 근처에서 값이 "
                 "가파르게 변합니다: β = 0.05만 되어도 β = 0보다 25배 작아질 수 있으니 그 근처에서는 조금씩 "
                 "움직이세요. kl_mix는 β에 대해 선형입니다.",
    "loss.alpha": "skew KL 종류의 치우침: 상대 분포를 얼마나 섞을지.",
    "loss.t2_scale": "발산에 T²를 곱해 T가 커져도 gradient 크기를 유지합니다.",
    "loss.ce_weight": "데이터 정답에 대한 cross-entropy(CE Loss)의 가중치.",
    "loss.kd_weight": "교사 모델에 대한 logits 발산(KD Loss)의 가중치.",
    "loss.hidden_weight": "매핑된 layer 사이 hidden state 맞추기의 가중치.",
    "loss.hidden_loss": "Hidden state 거리: mse, cosine, 또는 ln_mse(파라미터 없는 layer norm을 거친 뒤의 mse).",
    "loss.hidden_skip_first": "Hidden state 맞추기에서 첫 위치를 뺍니다(그 위치의 아주 큰 activation 때문).",
    "loss.cross_tokenizer": "교사·학생 모델의 tokenizer가 다를 때: aligned(텍스트 offset으로 구간을 맞춤; 정확히 "
                            "맞는 구간은 공통 문자열 위의 분포를, 나머지 구간은 chain rule 확률을 비교) 또는 "
                            "uld(맞춘 위치마다 정렬한 확률을 비교).",
    "loss.attn_weight": "매핑된 layer 사이 attention map 전이의 가중치.",
    "loss.attn_loss": "Attention map 거리: kl 또는 mse.",
    "mapping.strategy": "학생 모델의 각 layer가 어느 교사 layer에서 배울지: uniform, last, source(잘라 낸 학생 모델의 "
                      "layer와 그것이 복사되어 온 교사 layer), 또는 custom.",
    "mapping.pairs": "직접 지정한 쌍 '학생:교사' (0부터 세는 layer, 임베딩 출력은 'emb').",
    "lora.enabled": "학생 모델 전체 대신 LoRA adapter를 학습합니다.",
    "lora.r": "LoRA rank: low-rank 업데이트의 크기.",
    "lora.alpha": "LoRA 스케일 분자: 업데이트에 alpha / r를 곱합니다.",
    "lora.dropout": "LoRA 입력의 dropout.",
    "lora.target_modules": "적용할 모듈 이름(예: q_proj, v_proj). 학생 모델에서 채워지며, 비워 두면 아키텍처 기본값을 "
                           "씁니다.",
    "train.steps": "Optimizer 단계 수.",
    "train.batch_size": "프로세스마다 micro-batch 하나의 시퀀스 수.",
    "train.grad_accum": "Optimizer 단계마다 누적할 micro-batch 수.",
    "train.lr": "AdamW의 최대 학습률.",
    "train.warmup_steps": "Cosine 감소 전의 선형 warmup 단계 수.",
    "train.eval_every": "N 단계마다 검증 데이터로 평가합니다.",
    "train.save_every": "N 단계마다 checkpoint를 씁니다 (중지할 때는 항상).",
    "train.seed": "초기화, dropout, 데이터 순서의 seed.",
    "train.device": "auto, cpu, cuda 또는 cuda:N.",
    "train.precision": "fp32, bf16, 또는 auto (GPU에서는 bf16, CPU에서는 fp32).",
    "train.heal_init": "학습 전에, 교사 모델의 layer를 잘라 만든 학생 모델의 각 틈 주변 layer를 교사 모델의 hidden "
                       "state 쪽으로 최소제곱 맞춤합니다 (학생 모델이 '<teacher>?prune=...'여야 합니다).",
    "data.tasks": "한 run에서 여러 작업을 함께 학습합니다 (README 'Multi-task distillation'): 작업마다 데이터 출처, 종류, "
                  "샘플링 가중치, 손실 가중치가 있습니다. 비워 두면 data.dataset만으로 학습합니다.",
    "data.tasks[].name": "작업 이름 (영문자, 숫자, '_', '-', '.'): 지표에 이 이름이 붙습니다.",
    "data.tasks[].source": "작업의 행을 읽어 올 곳: data.dataset에 쓸 수 있는 어떤 spec이든, 또는 내장 작업 "
                           "builtin:chat-kind (classify)와 builtin:kjv-book (qa).",
    "data.tasks[].kind": "lm (일반 텍스트), chat (prompt/answer, perplexity로 채점), qa (prompt/짧은 답, exact match와 "
                         "토큰 F1로 채점), classify (텍스트 + 레이블 집합의 레이블, 정확도로 채점).",
    "data.tasks[].weight": "샘플링 가중치: 각 batch의 행 중 이 작업에서 뽑는 비율은 weight / 가중치 합입니다.",
    "data.tasks[].ce_weight": "정답이나 레이블에 대한 이 작업의 CE 가중치. 비우면 loss.ce_weight를 씁니다.",
    "data.tasks[].kd_weight": "교사 모델에 대한 이 작업의 KD 가중치. 비우면 loss.kd_weight를 씁니다.",
    "data.tasks[].text_column": "텍스트가 든 열 (lm, classify).",
    "data.tasks[].label_column": "정답 레이블이 든 열 (classify).",
    "data.tasks[].labels": "레이블 집합 (classify): 모델의 다음 토큰 분포로 채점하는 단어들.",
    "data.tasks[].prompt": "classify 작업의 질문. 행의 텍스트가 들어갈 자리에 {text}를 씁니다.",
    "data.tasks[].holdout": "이 작업의 점수를 재려고 학습에서 빼 두는 항목 수 (qa, classify). 많아야 5분의 1.",
    "data.loss_on": "Teacher-forced 항을 계산할 토큰: all(전부) 또는 answer(prompt 토큰은 가림; prompt/answer 데이터만).",
    "data.holdout_prompts": "학습에서 빼 두는 prompt/answer 데이터의 prompt 수. 학생 모델이 생성한 답의 품질을 재는 데 "
                            "씁니다. 0이면 빼 두지 않습니다.",
    "train.gen_eval": "평가할 때마다 떼어 둔 prompt에 대한 답을 샘플링해 교사 모델과 비교합니다(생성 품질; "
                      "prompt/answer 데이터만).",
    "onpolicy.lmbda": "완성 답변을 데이터에서 읽지 않고 샘플링(on-policy)하는 학습 단계의 비율. 0이면 데이터만"
                      "(off-policy), 1이면 샘플만 씁니다.",
    "onpolicy.seq_kd": "답변을 학생 모델 대신 교사 모델에서 샘플링합니다 (sequence-level KD).",
    "onpolicy.max_new_tokens": "샘플링하는 답변의 최대 토큰 수.",
    "onpolicy.temperature": "답변 샘플링의 temperature.",
    "onpolicy.top_p": "Nucleus 샘플링: 누적 확률이 이 값에 이르는 가장 작은 토큰 집합만 남깁니다. 1이면 전부.",
    "onpolicy.teacher_prompts": "학습 전에 교사 모델이 사용자 요청을 이 개수만큼 직접 씁니다(chat template의 사용자 "
                                "차례에서 이어 쓰기, Magpie 방식). On-policy 단계는 이 요청과 데이터의 prompt에서 "
                                "뽑습니다. 0이면 데이터의 prompt만 씁니다.",
    "train.report_to": "metrics.jsonl과 함께 지표를 보낼 곳 (TensorBoard 등, 설치된 경우).",
    "run.name": "Run 이름 (영문자, 숫자, '_', '-', '.'); 비우면 시각으로 만듭니다.",
}
