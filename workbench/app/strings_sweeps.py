"""Korean for the Sweeps tab and the frontier's words (`workbench.analysis.frontier`: its table, figure and
sentences take a `text` translator); merged into `workbench.app.strings.KO`."""

from __future__ import annotations

SWEEPS_KO: dict[str, str] = {
    "A sweep trains several students with one recipe and one budget, then scores them and the teacher on the same "
    "held-out prompts and rows. Read the frontier: lower is closer to the teacher, left is smaller (or right is "
    "faster); a ring marks a student no other model beats on both axes. Each student is an ordinary run (see Runs); "
    "a stopped sweep resumes where it stopped.":
        "압축 비교(sweep)는 학생 모델 여러 개를 같은 레시피와 같은 학습량으로 학습시킨 뒤, 교사 모델과 함께 같은 "
        "held-out 프롬프트와 행으로 평가합니다. 그래프 읽는 법: 아래일수록 교사 모델에 가깝고, 왼쪽일수록 작으며 "
        "(오른쪽 그래프는 오른쪽일수록 빠름), 테두리가 있는 점은 두 축 모두에서 더 나은 모델이 없는 학생 모델입니다. "
        "학생 모델 하나하나는 보통의 run이고(실행 기록 탭), 멈춘 비교는 멈춘 곳에서 이어집니다.",
    "students to compare": "비교할 학생 모델",
    "depth: whole layers cut; width: MLP channels and heads cut; both: some of each. Four sizes, from 0.8 to about "
    "0.37 of the teacher's non-embedding parameters.":
        "depth: layer를 통째로 덜어냄; width: MLP 채널과 head를 덜어냄; both: 둘 다 조금씩. 교사 모델의 임베딩 제외 "
        "파라미터 수의 0.8배부터 약 0.37배까지 네 가지 크기.",
    "recipe (preset)": "레시피 (프리셋)",
    "steps per student": "학생 모델마다 학습 step 수",
    "Start sweep": "비교 시작",
    "sweep": "압축 비교",
    "Refresh": "새로 고침",
    "Score finished students": "학습이 끝난 학생 모델 평가",
    "spec": "spec",
    "state": "상태",
    "students": "학생 모델",
    "frontier": "압축-품질 경계",
    "scores": "점수",
    "missing": "아직 시작 안 함",
    "resumable": "이어서 학습 가능",
    "restart": "처음부터 다시",
    "No sweep yet: start one above or run `workbench sweep --builtin width --preset chat`.":
        "아직 압축 비교가 없습니다. 위에서 시작하거나 `workbench sweep --builtin width --preset chat`을 실행하세요.",
    "Not scored yet: when students have finished, press Score (or run `workbench sweep --name {name} --score-only`).":
        "아직 평가하지 않았습니다. 학생 모델 학습이 끝나면 평가 버튼을 누르세요 (또는 `workbench sweep --name {name} "
        "--score-only`).",
    "Measured on: {rows}; generation: {generation}; speed: greedy decoding on {device} ({machine}). Fewer parameters "
    "= 1 − student / teacher parameters; decode speed = student / teacher tokens per second at batch 1; gap closed = "
    "1 − reverse KL of the student / reverse KL of its undistilled start.":
        "측정 데이터: {rows}; 생성: {generation}; 속도: {device}에서 greedy 디코딩 ({machine}). 줄어든 파라미터 = 1 − "
        "학생 모델 / 교사 모델 파라미터 수; 디코딩 속도 = batch 1에서 학생 모델 / 교사 모델의 초당 토큰 수; 메운 격차 "
        "= 1 − 학생 모델의 reverse KL / 증류 전 학생 모델의 reverse KL.",
    "Pick a sweep first.": "먼저 압축 비교를 고르세요.",
    "scoring: the teacher, each student and its undistilled start": "평가 중: 교사 모델, 각 학생 모델과 증류 전 모델",
    "quality against size": "크기에 따른 품질",
    "undistilled starts above {top} run off the top": "{top}보다 높은 증류 전 시작점은 위로 벗어납니다",
    "quality against speed": "속도에 따른 품질",
    "undistilled start": "증류 전 학생 모델",
    "Pareto-optimal (ring)": "Pareto 최적 (테두리)",
    "parameters (millions)": "파라미터 수 (백만)",
    "decode tokens/s at batch 1": "batch 1 디코딩 토큰/초",
    "sweep {name}: lower is closer to the teacher": "압축 비교 {name}: 아래일수록 교사 모델에 가까움",
    "Pareto": "Pareto",
    "size": "크기",
    "speed": "속도",
    "non-embedding (M)": "임베딩 제외 (M)",
    "reverse KL (nats/token)": "reverse KL (nats/토큰)",
    "tokens/s batch 1": "토큰/초 batch 1",
    "tokens/s batch 8": "토큰/초 batch 8",
    "undistilled {student}": "증류 전 {student}",
    "{share} fewer parameters": "파라미터 {share} 감소",
    "{ratio}× the teacher's decode speed": "교사 모델 디코딩 속도의 {ratio}배",
    "reverse KL {rkl} nats/token": "reverse KL {rkl} nats/토큰",
    "{closed} of the undistilled student's gap to the teacher closed (from {start})":
        "증류 전 학생 모델과 교사 모델의 격차 중 {closed} 메움 ({start}에서)",
}
