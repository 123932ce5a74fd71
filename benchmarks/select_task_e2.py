"""e2's task, chosen by measurement: which multi-step family the teacher solves and the student
can learn.

    .venv/bin/python benchmarks/select_task_e2.py                    # every family, then the pilot
    .venv/bin/python benchmarks/select_task_e2.py --n 40 --families words2 chain_sum3
    .venv/bin/python benchmarks/select_task_e2.py --pilot-only words2   # only the SM pilot

Per candidate family (and difficulty), on `--n` problems: the teacher's
(Qwen2.5-Coder-0.5B-Instruct) pass rate at temperature 0.5, one sample per problem, through
`lingua_nb.teacher.sample_correct_chains` (Fu et al.'s sampling; the teacher reads two solved
problems of the family first where the family has gold chains); the base student's
(SmolLM2-135M-Instruct) greedy accuracy, zero-shot, as e2 scores its students; the mean length of
the teacher's correct chains and of the gold chains in student tokens; and the seconds per problem
of each pass. Then a short sample-matching pilot on the most promising family: the student
fine-tuned on gold chains of other problems of the family for `--pilot-steps` steps, scored
greedily on the same problems as the base student (paired). Every row is written to
`benchmarks/results/select_task_e2.json` as soon as it is measured (atomically). Selection rule:
teacher >= 70 %, base student <= 10 %, and the pilot lifts the student clearly.
"""

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch

from lingua_nb.assets import load_causal_lm, load_tokenizer
from lingua_nb.core import atomic_path, autocast_dtype, autocast_to
from lingua_nb.corpora import load_gsm_symbolic_parallel, strip_calculator
from lingua_nb.distill import CausalCollator, encode_causal, train_student
from lingua_nb.evaluate import answers_correct, chat_prompts, greedy_generate, paired_difference
from lingua_nb.tasks import word_problems
from lingua_nb.teacher import sample_correct_chains

OUT = Path(__file__).parent / "results" / "select_task_e2.json"
TEACHER, STUDENT = "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"


def _rg(name, n, seed, **config):
    "(question, final answer) of a reasoning-gym generator."
    import reasoning_gym

    ds = reasoning_gym.create_dataset(name, size=n, seed=seed, **config)
    return [(x["question"], str(x["answer"]), x["metadata"]) for x in ds]


def chain_sum(n, seed, terms=3, digits=2):
    "reasoning-gym's chain_sum; the gold chain adds one term per line."
    rows = []
    for q, a, meta in _rg("chain_sum", n, seed, min_terms=terms, max_terms=terms,
                          min_digits=1, max_digits=digits):
        toks = meta["expression"].split()
        x, lines = int(toks[0]), []
        for op, b in zip(toks[1::2], toks[2::2]):
            y = x + int(b) if op == "+" else x - int(b)
            lines.append(f"{x} {op} {b} = {y}")
            x = y
        if str(x) != a:
            raise ValueError(f"chain_sum: the chain gives {x}, reasoning-gym says {a}")
        rows.append({"question": q, "answer": "\n".join(lines) + f"\n#### {a}", "final_answer": a})
    return rows


def leg_counting(n, seed):
    "reasoning-gym's leg_counting with two kinds of animal, at most 4 of each (no gold chain)."
    return [{"question": q, "answer": None, "final_answer": a}
            for q, a, _ in _rg("leg_counting", n, seed, min_animals=2, max_animals=2,
                               min_instances=1, max_instances=4)]


def gsm_small(n, seed, max_number=20, max_answer=200):
    """GSM-Symbolic instances (training templates) whose question numbers are all <= max_number
    and whose answer is a whole number <= max_answer."""
    ds = load_gsm_symbolic_parallel(("eng",), n_per_template=4, seed=0, split="train",
                                    originals=False)
    rows = []
    for r in ds:
        nums = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", r["question_eng"].replace(",", ""))]
        a = r["final_answer"]
        if nums and max(nums) <= max_number and a.isdigit() and int(a) <= max_answer:
            rows.append({"question": r["question_eng"],
                         "answer": strip_calculator(r["answer_eng"]), "final_answer": a})
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(rows))[:n]
    return [rows[i] for i in sorted(pick.tolist())]


def words(n_steps, **kw):
    "`lingua_nb.tasks.word_problems` as a family."
    def make(n, seed):
        ds = word_problems(n, n_steps=n_steps, seed=seed, **kw)
        return [{"question": r["question"], "answer": r["answer"],
                 "final_answer": r["final_answer"]} for r in ds]
    return make


FAMILIES = {
    "words2": words(2, max_value=10, max_total=100),
    "words2_addsub": words(2, max_value=10, max_total=100, ops="+-"),
    "words3": words(3, max_value=10, max_total=100),
    "chain_sum3": chain_sum,
    "gsm_small": gsm_small,
    "leg_counting2": leg_counting,
}


def write(table):
    with atomic_path(table["out"]) as tmp:
        tmp.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")


def problems(family, n, seed):
    "`n` problems of `family` for `seed`, distinct questions."
    seen, out = set(), []
    for r in FAMILIES[family](n, seed):
        if r["question"] not in seen:
            seen.add(r["question"])
            out.append(r)
    return out


def screen(family, args, models, table):
    ttok, stok, teacher, student, amp, eot = models
    probs = problems(family, args.n, args.seed)
    golds = [r["final_answer"] for r in probs]
    shots = []
    if probs[0]["answer"] is not None:
        held = {r["question"] for r in probs}
        shots = [(r["question"], r["answer"])
                 for r in problems(family, 6, args.seed + 999) if r["question"] not in held][:2]
    t0 = time.time()
    with autocast_to(torch.device("cpu"), amp):
        kept, tries = sample_correct_chains(
            teacher, ttok, chat_prompts(ttok, [r["question"] for r in probs], shots), golds,
            n_tries=1, seed=args.seed, k=5, temperature=0.5,
            max_new_tokens=args.teacher_tokens, batch_size=args.batch_size, progress=False)
    teacher_s = (time.time() - t0) / len(probs)
    t0 = time.time()
    outs = greedy_generate(student, stok, chat_prompts(stok, [r["question"] for r in probs]),
                           max_new_tokens=args.student_tokens, batch_size=args.batch_size,
                           eos_token_id=eot, autocast=amp)
    student_s = (time.time() - t0) / len(probs)
    s_ok = answers_correct(outs, golds)
    good = [r for r in kept if r is not None]
    slen = lambda texts: float(np.mean([len(stok(t, add_special_tokens=False)["input_ids"])
                                        for t in texts])) if texts else None
    row = {
        "family": family, "n": len(probs), "teacher_shots": len(shots),
        "teacher_pass_t05": float((tries == 1).mean()),
        "student_greedy": float(s_ok.mean()),
        "teacher_chain_tokens": float(np.mean([len(r) for r in good])) if good else None,
        "teacher_chain_student_tokens": slen([r.text for r in good]),
        "gold_chain_student_tokens": slen([r["answer"] for r in probs if r["answer"]]),
        "teacher_s_per_problem": round(teacher_s, 2),
        "student_s_per_problem": round(student_s, 2),
        "example_question": probs[0]["question"],
        "example_teacher_chain": good[0].text if good else None,
        "example_student_output": outs[0],
    }
    table["rows"] = [r for r in table["rows"] if r["family"] != family] + [row]
    write(table)
    print(json.dumps({k: v for k, v in row.items() if not k.startswith("example")}), flush=True)
    return row, s_ok


def pick_family(rows):
    "The family the selection rule prefers: teacher >= 70 %, student <= 10 %, then the widest gap."
    ok = [r for r in rows if r["teacher_pass_t05"] >= 0.7 and r["student_greedy"] <= 0.1]
    pool = ok or rows
    return max(pool, key=lambda r: r["teacher_pass_t05"] - r["student_greedy"])["family"]


def pilot(family, args, models, table, base_ok):
    ttok, stok, teacher, student, amp, eot = models
    evals = problems(family, args.n, args.seed)
    held = {r["question"] for r in evals}
    train = [r for r in problems(family, args.pilot_train + args.n, args.seed + 1)
             if r["question"] not in held][:args.pilot_train]
    if train[0]["answer"] is None:
        raise ValueError(f"{family} has no gold chains for the pilot")
    data = encode_causal(stok, chat_prompts(stok, [r["question"] for r in train]),
                         [r["answer"] for r in train], k=1, suffix_ids=eot)
    model = load_causal_lm(STUDENT)
    t0 = time.time()
    hist = train_student(model, data, CausalCollator(pad_id=eot[0]), "sm",
                         steps=args.pilot_steps, batch_size=args.pilot_batch, lr=args.pilot_lr,
                         warmup=min(10, args.pilot_steps // 5), seed=args.seed, device="cpu",
                         mixed_precision="bf16" if amp is not None else "no", progress=False)
    step_s = (time.time() - t0) / args.pilot_steps
    golds = [r["final_answer"] for r in evals]
    outs = greedy_generate(model, stok, chat_prompts(stok, [r["question"] for r in evals]),
                           max_new_tokens=args.student_tokens, batch_size=args.batch_size,
                           eos_token_id=eot, autocast=amp)
    ok = answers_correct(outs, golds)
    diff = paired_difference(base_ok.astype(float), ok.astype(float), seed=args.seed)
    row = {"family": family, "source": "gold", "n_train": len(train), "steps": args.pilot_steps,
           "batch_size": args.pilot_batch, "lr": args.pilot_lr,
           "loss_first": float(hist.loss[0]), "loss_last": float(np.mean(hist.loss[-5:])),
           "base_acc": float(base_ok.mean()), "sm_acc": float(ok.mean()), "n_eval": len(evals),
           "paired": diff, "s_per_step": round(step_s, 2), "example_output": outs[0]}
    table["pilots"] = [p for p in table["pilots"] if p["family"] != family] + [row]
    write(table)
    print(json.dumps({k: v for k, v in row.items() if k != "example_output"}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--n", type=int, default=40, help="problems per family")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--teacher-tokens", type=int, default=192)
    ap.add_argument("--student-tokens", type=int, default=160)
    ap.add_argument("--pilot-families", type=int, default=1, help="families piloted (0: none)")
    ap.add_argument("--pilot-only", nargs="*", default=None, help="pilot these, screening none")
    ap.add_argument("--pilot-train", type=int, default=256)
    ap.add_argument("--pilot-steps", type=int, default=40)
    ap.add_argument("--pilot-batch", type=int, default=8)
    ap.add_argument("--pilot-lr", type=float, default=2e-4)
    ap.add_argument("--out", type=Path, default=OUT, help="the JSON table (rows are replaced)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    table = (json.loads(args.out.read_text()) if args.out.exists()
             else {"rows": [], "pilots": []})
    table["out"] = str(args.out)
    table["machine"] = {"cpu": platform.processor() or platform.machine(),
                        "threads": torch.get_num_threads(),
                        "args": {k: str(v) if isinstance(v, Path) else v
                                 for k, v in vars(args).items()}}
    amp = autocast_dtype("auto", "cpu")
    ttok, stok = load_tokenizer(TEACHER), load_tokenizer(STUDENT)
    eot = [stok.convert_tokens_to_ids("<|im_end|>")]
    teacher = None if args.pilot_only else load_causal_lm(TEACHER)
    models = (ttok, stok, teacher, load_causal_lm(STUDENT), amp, eot)
    base = {}
    for fam in ([] if args.pilot_only is not None else args.families):
        _, base[fam] = screen(fam, args, models, table)
    if args.pilot_only is not None:
        chosen = args.pilot_only
        for fam in chosen:
            probs = problems(fam, args.n, args.seed)
            outs = greedy_generate(models[3], stok,
                                   chat_prompts(stok, [r["question"] for r in probs]),
                                   max_new_tokens=args.student_tokens,
                                   batch_size=args.batch_size, eos_token_id=eot, autocast=amp)
            base[fam] = answers_correct(outs, [r["final_answer"] for r in probs])
    else:
        rows = [r for r in table["rows"] if r["family"] in base]
        with_gold = [r for r in rows if r["gold_chain_student_tokens"] is not None]
        chosen = []
        for _ in range(args.pilot_families):
            left = [r for r in with_gold if r["family"] not in chosen]
            if left: chosen.append(pick_family(left))
    del teacher
    for fam in chosen: pilot(fam, args, models, table, base[fam])


if __name__ == "__main__":
    main()
