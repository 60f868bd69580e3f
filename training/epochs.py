"""How epochs are named for people, the same on every page, in the API and the CLI.

fastai's fine_tune first trains the new head with the pretrained body frozen
(`freeze_epochs`, 1 by default), then the whole network for `epochs` epochs. The
epochs someone asked for are numbered 1..N; the frozen ones before them are the
"warm-up". Rows are stored by their position across both phases (0-based).
"""

from __future__ import annotations


def epoch_name(index: int, freeze_epochs: int) -> str:
    """ "warm-up" (or "warm-up 2" when there are several), else "1".."N"."""
    if index < freeze_epochs:
        return "warm-up" if freeze_epochs == 1 else f"warm-up {index + 1}"
    return str(index - freeze_epochs + 1)


def epoch_number(index: int, freeze_epochs: int) -> int | None:
    """The epoch's number among the N asked for; None for a warm-up epoch."""
    return None if index < freeze_epochs else index - freeze_epochs + 1


def epoch_progress(index: int, n_epochs: int, freeze_epochs: int) -> str:
    """Where training is: "Warm-up (body frozen)" or "Epoch 2/4"."""
    if index < freeze_epochs:
        return "Warm-up (body frozen)"
    return f"Epoch {index - freeze_epochs + 1}/{n_epochs - freeze_epochs}"
