"train_loop itself: a tiny Llama on a DataLoader."
import torch

from lingua_nb.core import tiny_llama
from mp_util import digest, trainable
from lingua_nb.train import train_loop


def check(acc):
    lm = tiny_llama(layers=1, hidden=16, vocab=50)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": torch.randint(0, 50, (12,), generator=g)} for _ in range(32)]
    loader = torch.utils.data.DataLoader(
        data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    seen = []
    def loss_fn(model, batch):
        seen.append(batch["input_ids"])
        return model(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss
    before = digest(*trainable(lm))
    train_loop(lm, loader, loss_fn, steps=3, lr=1e-2, progress=False, accelerator=acc)
    return seen, lm, before
