"""The Learn tab for Korean readers: the topics of `workbench.learn`, written in Korean (not translated line by
line), with the vocabulary of Korean distillation write-ups (지식 증류, soft label, Temperature scaling, KD Loss).

    from workbench.learn_ko import topic_markdown_ko
    print(topic_markdown_ko("temperature"))

Every key of `workbench.learn.TOPICS` has an entry here (a test checks it); the notebook named is the same.
"""

from __future__ import annotations

from workbench.learn import NOTEBOOK_DIR, topic

KO_TOPICS: dict[str, tuple[str, str]] = {
    "distillation": (
        "지식 증류(Knowledge Distillation)란",
        "**개념.** 지식 증류는 크고 잘 학습된 **교사 모델**(teacher)의 지식을 작은 **학생 모델**(student)에 "
        "압축하여 전이하는 방법입니다. 학생 모델은 데이터의 정답 토큰 하나만 배우지 않고, 매 위치에서 교사 "
        "모델이 내놓는 다음 토큰의 **출력 분포(logits)** 전체를 따라 하도록 학습합니다.\n\n"
        "**특징.** 일반 학습의 목표가 정답을 맞히는 것이라면, 증류의 목표는 모델을 경량화하면서도 교사 모델의 "
        "품질을 최대한 지키는 것입니다. 교사 모델의 분포(soft label)에는 '정답 말고 어떤 단어가 그럴듯한지, "
        "얼마나 그럴듯한지'까지 담겨 있어서, 같은 데이터와 같은 학습 단계로도 정답만 배운 모델보다 대개 더 "
        "좋아지고 훨씬 빠르게 수렴합니다.\n\n"
        "**구성 요소.** 교사 모델, 학생 모델, 그리고 두 모델에 똑같이 넣는 하나의 데이터셋. 손실 함수는 증류 "
        "손실 함수(KD Loss)에 필요하면 정답에 대한 CE Loss를 더한 것입니다.\n\n"
        "**장점.** 파라미터 수가 줄어 추론 속도가 빨라지고 연산 비용이 낮아져, 엣지·모바일 기기 배포가 "
        "쉬워집니다.\n\n"
        "**고려사항.** 교사 모델의 라이선스를 확인하세요(내보낸 모델 카드에 적힙니다). 데이터의 다양성이 "
        "부족하면 학생 모델이 교사 모델의 일부만 배웁니다. 과도한 압축 시 성능 열화가 커지니, 호환성 카드의 "
        "크기 비율을 함께 보세요.",
    ),
    "temperature": (
        "Temperature scaling (온도 T)",
        "두 모델의 logits를 **T**로 나눈 다음 softmax를 취합니다. T = 1이면 교사 모델은 보통 한 토큰에 거의 "
        "모든 확률을 몰아주고 나머지는 아주 작은 값이 됩니다. T를 2나 4로 올리면 분포가 평평해져서, 학생 "
        "모델이 교사 모델의 두 번째, 세 번째, 열 번째 후보까지 보게 됩니다. 흔히 말하는 *dark knowledge*이며, "
        "soft label의 정보 풍부도가 높아지는 것입니다. 순위는 바뀌지 않고, 손실이 볼 수 있는 양만 달라집니다."
        "\n\n"
        "T로 나누면 발산의 gradient도 약 1/T²로 작아집니다. 그래서 T = 4로 학습하면 16배 느리게 배웁니다. "
        "**T² 곱하기**를 켜 두면 손실에 T²를 다시 곱해 어떤 T에서도 학습 보폭이 같아집니다. 이 옵션을 끈 "
        "레시피와 비교할 때가 아니라면 켜 두세요. Temperature 조절은 1에서 4 사이로 시작하고, 8을 넘기면 "
        "분포가 너무 뭉개집니다.",
    ),
    "divergences": (
        "발산(divergence): 학생 모델을 교사 모델과 비교하는 방법",
        "발산은 학생 모델의 분포 q가 교사 모델의 분포 p에서 얼마나 떨어져 있는지 잽니다.\n\n"
        "- **forward_kl** KL(p‖q): 교사 모델이 확률을 준 곳에 학생 모델이 확률을 주지 않으면 벌을 받습니다. "
        "그래서 학생 모델은 그럴듯한 토큰을 모두 *덮으려고* 넓게 퍼집니다. 가장 고전적인 선택입니다.\n"
        "- **reverse_kl** KL(q‖p): 교사 모델이 확률을 주지 않은 곳에 학생 모델이 확률을 주면 벌을 받습니다. "
        "학생 모델은 한 봉우리(mode)를 *찾아* 날카롭게 남습니다. 모든 것을 담기 어려운 작은 학생 모델에 "
        "알맞습니다.\n"
        "- **jsd**(β): 두 방향을 섞은 것으로 값이 폭주하지 않습니다. β = 0이면 forward KL, β = 1이면 reverse "
        "KL입니다. 양 끝 근처에서 값이 가파르게 변합니다. β = 0.05만 되어도 β = 0보다 25배 작아질 수 있으니, "
        "그 근처에서는 조금씩 움직이세요(손실 크기와 알맞은 학습률이 함께 바뀝니다).\n"
        "- **kl_mix**(β): (1−β)·forward KL + β·reverse KL로, β에 대해 선형입니다. β가 작으면 forward KL의 넓은 "
        "학생 모델을 유지하면서, 교사 모델이 확률을 주지 않은 곳에 준 확률에 벌을 더합니다.\n"
        "- **skew_forward_kl / skew_reverse_kl**(α): 상대 분포를 α만큼 섞은 분포에 대한 KL입니다. 한쪽이 "
        "어떤 토큰에 거의 0을 줄 때도 손실과 gradient가 유한하게 유지됩니다.\n"
        "- **tvd**: 절대 차이 합의 절반. 1을 넘지 않고, 실제로는 mode를 찾는 쪽으로 움직입니다.\n"
        "- **soft_ce**: forward KL에 교사 모델의 엔트로피를 더한 값(gradient는 같고 숫자만 다릅니다).\n"
        "- **mse**: softmax도 temperature도 없이 logits 자체의 제곱 차이입니다.\n\n"
        "잘 모르겠다면 T = 2의 forward_kl로 시작하고, 학생 모델이 훨씬 작다면 reverse_kl이나 jsd를 "
        "시도해 보세요.",
    ),
    "weights": (
        "손실 가중치",
        "학습 손실은 가중합입니다.\n\n"
        "`w_ce·CE + w_kd·발산 + w_hidden·hidden + w_attn·attention`\n\n"
        "- **ce_weight**: 데이터의 실제 다음 토큰에 대한 CE Loss(일반 fine-tuning과 같습니다).\n"
        "- **kd_weight**: 교사 모델의 분포에 대한 발산, 즉 증류 손실 함수(KD Loss)입니다.\n"
        "- **hidden_weight**, **attn_weight**: 학생 모델의 중간 layer를 교사 모델의 것에 맞춥니다"
        "(*Layer 매핑* 참고).\n\n"
        "kd_weight = 1에 나머지가 0이면 순수한 증류입니다. CE를 조금(0.1~0.5) 더하면 교사 모델이 틀리는 곳에서 "
        "학생 모델을 데이터에 붙잡아 둡니다. 기본 task 학습과 KD를 함께 하는 Multi-task Learning인 셈입니다. "
        "항들의 크기가 서로 다르니 학습 탭에서 곡선을 하나씩 보세요. 다른 항을 압도하는 항이 학생 모델이 "
        "배우는 것을 결정합니다.",
    ),
    "mapping": (
        "Layer 매핑, hidden state와 attention",
        "출력 분포 말고도 학생 모델은 교사 모델의 *내부*에서 배울 수 있습니다. 매핑은 학생 모델의 각 layer가 "
        "교사 모델의 어느 layer에서 배울지 정합니다.\n\n"
        "- **uniform**: 학생 layer i가 상대적 깊이가 같은 교사 layer에서 배웁니다.\n"
        "- **last**: 마지막 layer끼리만 짝짓습니다.\n"
        "- **source**: 교사 모델에서 layer를 잘라 낸 학생 모델이라면, 남은 각 layer를 그것이 복사되어 온 교사 "
        "layer와 짝짓습니다.\n"
        "- **custom**: `3:11`이나 `emb:emb`(임베딩 출력)처럼 직접 지정합니다.\n\n"
        "**Intermediate Feature Matching**(FitNets)은 학생 layer의 출력을 짝지은 교사 layer의 출력 쪽으로 "
        "당깁니다. 폭이 다르면 작은 projector가 학생 폭을 교사 폭으로 옮기며, 이 projector는 내보내는 학생 "
        "모델에 들어가지 않습니다. **Attention Transfer**(TinyBERT)는 학생 모델의 attention map을 교사 모델의 "
        "것과 닮게 만들며, head 수가 다르면 head를 평균합니다. 둘 다 학생 모델이 교사 모델과 멀리서 시작할 때"
        "(예: 새로 초기화한 모델) 가장 도움이 됩니다.",
    ),
    "lora": (
        "LoRA 학생 모델",
        "**LoRA**를 쓰면 학생 모델의 원래 가중치는 고정되고, 고른 linear layer 옆에 작은 low-rank 업데이트"
        "(rank **r**, alpha / r로 스케일)만 학습합니다. 학습하는 파라미터 수가 훨씬 적어 optimizer 메모리가 "
        "줄고 checkpoint도 작습니다. 하지만 매 단계 전체 모델을 돌리므로 CPU에서 많이 빨라지지는 않습니다. "
        "같은 단계 수라면 전체를 학습한 학생 모델이 대개 더 많이 배우고, LoRA는 메모리가 부족하거나 학생 모델이 "
        "이미 교사 모델에 가까울 때 빛납니다. 내보내기는 adapter를 가중치에 합치므로 결과물은 평범한 모델입니다.",
    ),
    "pruning": (
        "Pruning(layer 잘라 내기)과 healing",
        "가장 빨리 좋은 학생 모델을 얻는 방법은 교사 모델에서 layer를 잘라 내는 것입니다. "
        "`BASE?prune=keep&layers=0-2,6-11`, `prune=drop`, `prune=even`, `prune=importance`(빼도 가장 덜 아픈 "
        "layer를 남김) 중 하나를 씁니다. 남은 layer는 모두 교사 layer의 정확한 복사본이라 학생 모델은 처음부터 "
        "많은 것을 알고 있습니다.\n\n"
        "잘라 낸 자리마다 **틈**(gap)이 생깁니다. 다음 layer는 이미 사라진 layer들의 출력을 기대하기 때문입니다. "
        "**Healing**(`train.heal_init`)은 학습 전에 각 틈 주변 MLP 출력을 최소제곱으로 다시 맞춰 틈을 메웁니다. "
        "닫힌 식으로 풀어 CPU에서도 몇 초면 되고, 맞춘 오차는 run의 metrics(`heal` 행)에 남습니다. 그다음 "
        "증류가 나머지를 학습합니다.\n\n"
        "hidden state나 attention 항을 쓸 때는 **source** 매핑이 남은 각 layer를 복사되어 온 교사 layer와 "
        "짝짓습니다(uniform은 이웃 layer와 짝지어 버립니다). 너무 많이 잘라 내면 학습으로도 되찾지 못하는 과도한 "
        "압축 시 성능 열화가 생기니, 호환성 카드의 크기 비율을 보세요.",
    ),
    "width": (
        "얼마나 작게 만들 수 있을까: 너비와 깊이, 그리고 경계 그래프 읽기",
        "학생 모델은 **깊이**(layer를 통째로)를 덜어낼 수도, **너비**(모든 layer 안쪽: MLP 채널, key/value 그룹 "
        "단위의 attention head, hidden 채널)를 덜어낼 수도 있습니다. spec이 어느 쪽인지 말해 줍니다: "
        "`BASE?prune=importance&layers=24`는 깊이, `BASE?prune=importance&mlp=510`은 너비, "
        "`...&layers=24&mlp=760`은 둘 다입니다. 너비 채널은 calibration 텍스트에서 얼마나 강하게 활성화되는지로 "
        "순위를 매겨(Minitron, Muralidharan et al. 2024의 activation importance) 조용한 채널부터 덜어냅니다. 그다음 "
        "healing이 각 layer의 attention과 MLP 출력 projection을 닫힌 식으로 풀어, 좁아진 layer가 교사 모델 layer의 출력을 "
        "다시 내도록 맞춥니다.\n\n"
        "파라미터 수가 같을 때, 아무것도 고치기 *전*에는 모든 layer의 너비를 자르는 쪽이 더 크게 망가집니다. "
        "healing과 학습을 거치면 교사 모델 크기의 절반 이하에서는 너비와 깊이를 함께 덜어낸 학생 모델이 보통 교사 "
        "모델에 더 가깝게 끝나고(모든 layer가 계산 속 제자리를 지킴), 깊이를 덜어낸 학생 모델은 더 빨리 "
        "디코딩합니다(토큰마다 차례로 거칠 layer가 적음). 어느 쪽이 중요한지는 목적에 달렸으니 직접 재 보세요. **압축 비교** 탭(`workbench sweep`)은 학생 "
        "모델 여러 개를 같은 레시피와 학습량으로 학습시키고 **경계(frontier)** 그래프를 그립니다.\n\n"
        "읽는 법: 파란 점은 증류한 학생 모델, 속이 빈 회색 점은 증류 전의 같은 학생 모델, 별은 교사 모델(reverse "
        "KL 0)입니다. 아래일수록 교사 모델에 가깝고, 왼쪽일수록 작습니다(오른쪽 그래프는 오른쪽일수록 빠름). "
        "테두리가 있는 점은 **Pareto 최적**입니다: 그보다 작으면서(또는 빠르면서) 교사 모델에 더 가까운 모델이 "
        "없습니다. 테두리 있는 점 가운데 reverse KL과 반복 4-gram을 받아들일 수 있는 가장 작은 학생 모델을 "
        "고르세요. 학생 모델마다 아래 문장이 숫자를 알려 주며, 각 숫자는 무엇으로 측정했는지 함께 적혀 있습니다.",
    ),
    "metrics": (
        "지표 읽기: teacher-forced 숫자와 생성 결과",
        "학습 탭의 숫자 대부분은 **teacher-forced**입니다. 학생 모델이 실제 텍스트를 읽으면서 다음 토큰 하나만 "
        "예측합니다. 학습 KD는 run의 temperature T에서(켜져 있으면 T²를 곱해) 재고, 평가 숫자는 따로 떼어 둔 "
        "검증 데이터에서 T = 1로 잽니다. **perplexity**(실제 다음 토큰에 학생 모델이 얼마나 놀라는지, 교사 "
        "모델의 값은 점선 기준선), **KL(teacher‖student)**, **top-1 일치율**(두 모델이 가장 그럴듯한 토큰으로 "
        "같은 것을 고르는 비율)입니다.\n\n"
        "이 숫자가 좋아도 학생 모델이 엉뚱한 글을 쓸 수 있습니다. 생성할 때는 자기가 고른 토큰이 다음 입력이 "
        "되어 초반 실수가 쌓이기 때문입니다(*exposure bias*). **생성 지표**가 바로 이것을 잽니다. 학생 모델이 "
        "학습에 쓰지 않은 prompt에 답하고, 교사 모델이 그 답을 읽습니다. **교사 모델에 대한 reverse KL**"
        "(답변 토큰당 nats)은 교사 모델도 똑같이 썼을 때 0이고, **teacher NLL**은 교사 모델이 그 답을 얼마나 "
        "그럴듯하게 보는지, **반복된 4-gram**은 같은 말을 되풀이하는지, **빈 답변**은 바로 멈추는지를 "
        "보여 줍니다.\n\n"
        "같은 데이터에서 잰 숫자끼리만 비교하세요. 앱의 모든 숫자에는 무엇으로 쟀는지가 함께 적혀 있습니다.",
    ),
    "onpolicy": (
        "On-policy 증류",
        "보통의(off-policy) 증류는 학생 모델에게 데이터셋의 텍스트만 보여 줍니다. **On-policy** 증류에서는 "
        "학생 모델이 직접 씁니다. 배치의 **λ** 비율만큼은 학생 모델이 prompt에 대한 답을 스스로 샘플링하고, "
        "교사 모델이 샘플링된 토큰 하나하나를 채점합니다. 발산은 그 답변 토큰에서만 계산하므로, 학생 모델은 "
        "대화할 때 실제로 저지를 자기 실수에서 회복하는 법을 배웁니다. 보통 reverse KL이나 JSD(β)를 씁니다"
        "(GKD, Agarwal et al. 2024; MiniLLM).\n\n"
        "샘플링에는 시간이 듭니다. 학습 탭에 생성 tokens/s와 각 단계에서 생성에 쓴 시간 비율이 나옵니다. "
        "**seq_kd**를 켜면 교사 모델이 답을 대신 씁니다(sequence-level 증류). 결과는 perplexity만이 아니라 "
        "생성 지표(학생 모델 자신의 답에 대한 reverse KL, 반복된 4-gram)로 판단하세요.",
    ),
    "crosstok": (
        "어떤 교사 모델이든, 어떤 학생 모델이든: tokenizer가 둘일 때",
        "보통의 KD는 교사 모델과 학생 모델의 다음 토큰 분포를 위치마다 비교하므로 tokenizer가 하나여야 합니다. "
        "학생 모델이 자기만의 tokenizer(더 작거나, 자기 텍스트로 학습한 것)를 쓰면 같은 텍스트가 다른 토큰으로 "
        "잘립니다. 위치가 더는 짝지어지지 않고, 두 어휘는 서로 다른 문자열의 집합이 됩니다. workbench는 학생 "
        "모델의 행을 텍스트로 풀어 쓰고, 교사 모델이 그 텍스트를 자기 tokenizer로 읽게 한 뒤, 두 토큰화를 양쪽에서 "
        "같은 바이트를 덮는 **구간**(span)으로 정렬합니다.\n\n"
        "`loss.cross_tokenizer`는 구간에서 무엇을 비교할지 정합니다. **aligned**(기본값): 구간이 양쪽 모두 토큰 "
        "하나인 곳(같은 문자열, *정확히 일치*)에서는 두 어휘가 함께 가진 문자열 위의 두 다음 토큰 분포를 비교하고, "
        "나머지 구간에서는 각 모델이 구간의 텍스트 전체를 얼마나 그럴듯하게 보는지를 비교합니다. **uld**(Universal "
        "Logit Distillation): 두 확률 벡터를 큰 값부터 정렬해 비교하며, 어느 토큰이 어느 토큰인지는 보지 "
        "않습니다.\n\n"
        "perplexity는 tokenizer에 따라 달라지므로 이런 모델들은 **바이트당 비트**(bits per byte)로 비교합니다. "
        "토큰이 무엇이든 텍스트 한 바이트당 cross-entropy를 비트로 잰 값입니다. 내장 모델 쌍에서 데이터가 적을 때"
        "(몇백 행을 여러 번 읽음) CE + aligned는 CE만 쓴 학습보다 바이트당 비트가 5.8% 낮았고(seed 세 개), uld는 "
        "도움이 되지 않았습니다. 데이터가 많아지면 이득이 줄어듭니다. 설정 탭의 **tokenizer 정렬**이 예시 "
        "텍스트의 구간을 보여 줍니다.",
    ),
    "quantize": (
        "작은 학생 모델 배포하기: 양자화한 내보내기",
        "증류한 학생 모델은 작은 곳에서 돌리려고 만듭니다. 랩톱의 llama.cpp나 Ollama(**GGUF**), 휴대폰이나 "
        "엣지 장치의 ONNX Runtime(**ONNX**)입니다. 둘 다 가중치를 더 적은 비트로 저장할 수 있습니다. **q8_0**은 "
        "가중치 32개씩 묶은 블록마다 scale 하나를 두고 가중치당 8비트를, **q4_0**은 4비트를 쓰며, ONNX **int8**은 "
        "행렬 곱에 같은 방식을 씁니다. 비트가 적으면 파일이 작아지고, 토큰 하나를 생성할 때마다 읽는 바이트도 "
        "줄어듭니다. CPU에서 디코딩 속도를 묶어 두는 것이 바로 이 바이트입니다. 반올림은 증류로 잃은 품질에 더해 "
        "품질을 조금 더 잃게 합니다.\n\n"
        "두 비용을 같은 텍스트에서 비교하세요. float 학생 모델에서 반올림한 사본까지의 KL과, 교사 모델에서 float "
        "학생 모델까지의 KL입니다. 앞의 것이 뒤의 것보다 작으면 반올림은 싼 편입니다. 내보내기(리포트·내보내기 "
        "탭, 또는 `workbench export RUN OUT --format gguf-q8_0`)는 파일을 제자리에 두기 전에 workbench가 아닌 "
        "런타임으로 모든 파일을 다시 읽어 확인하고, report card는 고른 내보내기마다 그 런타임에서 크기, 속도, "
        "품질을 재며, 각 숫자는 무엇으로 쟀는지 함께 말합니다.",
    ),
    "multitask": (
        "Multi-task 증류 (여러 작업을 한 번에)",
        "좁은 작업 하나로만 증류한 학생 모델은 대화하는 법을 잊기 쉽고, 채팅으로만 증류한 학생 모델은 그 작업을 "
        "하지 못합니다. **Multi-task 증류**는 기본 task 학습과 병행하여 KD를 적용합니다(Multi-task Learning). "
        "배치의 각 행을 여러 **작업**(`data.tasks`) 중 하나에서 뽑는데, 작업 k가 뽑힐 확률은 weight_k / 가중치 "
        "합이고, 작업마다 손실 가중치를 따로 둡니다. 정답이나 레이블이 있는 작업은 그 정답에 대한 **CE Loss**로 "
        "작업 자체를 배우고, 같은 토큰에서 교사 모델에 대한 **KD Loss**(채팅 행에서는 KD Loss만)가 교사 모델의 "
        "일반적인 행동을 전이합니다. 그래서 작업을 배우느라 나머지 능력이 밀려나지 않습니다.\n\n"
        "작업 종류는 **lm**(일반 텍스트, 모든 토큰에서 손실), **chat**(prompt와 답), **qa**(질문과 짧은 답; 학생 "
        "모델의 greedy 답을 exact match와 토큰 F1로 채점), **classify**(텍스트와 정해진 집합의 레이블; 자유 "
        "텍스트를 맞춰 보지 않고, 질문 다음에 모델이 어느 레이블 단어를 가장 그럴듯하게 보는지로 채점)입니다. "
        "평가할 때마다 각 작업을 그 작업의 떼어 둔 항목으로 채점하고, 같은 항목에 대한 교사 모델의 점수를 함께 "
        "적습니다. 교사 모델이 우연 수준으로밖에 못 푸는 작업은 KD로 가르칠 것이 없습니다.\n\n"
        "run 읽는 법: 학습 탭이 작업마다 곡선 하나를 그리고, 교사 모델의 점수는 점선으로 보여 줍니다. 각 작업의 "
        "점수가 교사 모델의 선을 향해 오르면서 채팅 perplexity가 오르지 않으면 잘 섞인 것입니다. 배치에서 더 "
        "많이 뽑으려면 **weight**를, 레이블에 더 기대려면 **CE 가중치**를, 교사 모델에 더 기대려면 **KD 가중치**를 "
        "올리세요. 설정 탭의 작업 표에서 모두 바꿀 수 있습니다.",
    ),
}


def topic_markdown_ko(key: str) -> str:
    """One topic in Korean as Markdown: title, body, and the notebook to run (same as the English topic's), or its
    command where it has no notebook."""
    item = topic(key)
    title, body = KO_TOPICS[key]
    if not item.notebook:
        return (f"### {title}\n\n{body}\n\n*직접 해 보기:* `{item.try_it}`(또는 설정 탭의 같은 프리셋)로 내장 "
                "모델에서 이 내용을 실행해 볼 수 있습니다.")
    return (f"### {title}\n\n{body}\n\n*직접 해 보기:* `{NOTEBOOK_DIR}/{item.notebook}`에서 내장 모델로 이 "
            "내용을 CPU 몇 분 만에 실행해 볼 수 있습니다.")
