"CALM's fit: composition blocks between two tiny Llamas (anchor and augment frozen)."
import torch

from lingua_nb.calm import CALMConfig, CALMModel, fit
from lingua_nb.core import tiny_llama
from mp_util import digest, trainable


def check(acc):
    torch.manual_seed(0)
    anchor, augment = tiny_llama(layers=2, hidden=16, vocab=50), tiny_llama(
        layers=2, hidden=16, vocab=50
    )
    model = CALMModel(
        CALMConfig(anchor.config, [augment.config], k=1, num_heads=2),
        anchor=anchor,
        augments=[augment],
    )
    rows = torch.randint(3, 50, (32, 8), generator=torch.Generator().manual_seed(0))
    seen, forward = [], model.forward
    def spy(*args, **kwargs):
        seen.append(kwargs["input_ids"]); return forward(*args, **kwargs)
    model.forward = spy
    before = digest(*trainable(model))
    fit(model, rows, rows, steps=3, batch_size=4, lr=1e-2, progress=False, accelerator=acc)
    return seen, model, before
