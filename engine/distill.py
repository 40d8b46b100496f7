"""Holding a continued model near the model it continues, away from the clicks (learning without forgetting).

When a later iteration continues a model (``train --init``), the new clicks are where the old model was wrong; on
massachusetts_roads they fall at the edges of the road labels, and a few warm-started steps on them can paint road
over the whole map (docs/benchmarks.md, "The massachusetts_roads collapse at iteration 1, diagnosed"). With
``--distill W`` the model it continues, frozen, predicts every training patch too, and on the pixels that carry no
label the new model pays W times the KL divergence of its prediction from the old one's: the clicks move the map
where they are, and the rest of the map moves only as far as they pull it.
"""

import torch
import torch.nn.functional as F


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, unlabelled: torch.Tensor,
                 threshold: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Mean over the ``unlabelled`` pixels (B x H x W bool) of KL(teacher || student), both B x C x H x W logits; no
    gradient flows to the teacher. ``threshold``: only the pixels where the teacher's largest probability is at
    least this count (the others are left free to change). 0 when no pixel counts."""
    log_student = F.log_softmax(student_logits.float(), dim=1)
    log_teacher = F.log_softmax(teacher_logits.detach().float(), dim=1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)
    if threshold > 0:
        unlabelled = unlabelled & (log_teacher.max(dim=1).values.exp() >= threshold)
    mask = unlabelled.to(kl.dtype)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)
