"train_student: a tiny T5 student on sums, with the format batch sampler (one format per batch)."
from lingua_nb.assets import load_tokenizer
from lingua_nb.distill import (
    DistillCollator,
    SubVocab,
    build_formats,
    encode_for_student,
    t5_student,
    train_student,
)
from mp_util import digest, trainable


def check(acc):
    rows = [
        {
            "question": f"What is {a} plus {b}?",
            "answer": f"{a} + {b} = {a + b}\n#### {a + b}",
            "final_answer": str(a + b),
        }
        for a in range(2, 8)
        for b in range(1, 5)
    ]
    fmt = build_formats(rows, ["zs_cot", "zs_answer"])
    sv = SubVocab.from_texts(load_tokenizer("xlm-r"), list(fmt["source"]) + list(fmt["target"]))
    ds, collate, seen = (
        encode_for_student(fmt, sv, None, k=3),
        DistillCollator(pad_id=sv.pad_id),
        [],
    )
    def spy(examples):
        b = collate(examples); seen.append(b["input_ids"]); return b
    student = t5_student(len(sv), d_model=16, num_layers=1, d_ff=32, dropout=0.0)
    before = digest(*trainable(student))
    train_student(
        student, ds, spy, "dm", steps=3, batch_size=4, lr=1e-2, progress=False, accelerator=acc
    )
    return seen, student, before
