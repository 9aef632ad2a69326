"""A network that corrects a registered atlas instead of drawing every label from nothing.

Register then refine: the input carries, after the image channels, one channel holding a
label map that an atlas registration put on the subject (:mod:`scseg.atlas.registration`).
:class:`LabelPrior` gives the wrapped network the image and a learnt embedding of each
voxel's prior label (a few channels, not one per class: the first convolution stays as cheap
as the image's), and adds the network's output to the prior's own logits (``strength`` x
one-hot). The network's
head starts at zero, so an untrained model predicts the registered atlas exactly, and
training only has to learn where the registration is wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scseg.layers.grid import downsample_labels


class LabelPrior(nn.Module):
    """``net`` (built for ``image_channels + embedding`` inputs) refining a prior label map.

    Args:
        net: the network; its heads (``head``, ``aux_heads``) are zeroed.
        classes: number of classes of the prior and of the output.
        embedding: channels that describe a prior label to the network.
        strength: initial logit of the prior's class (others 0); learnt.

    Input ``(B, image_channels + 1, *spatial)``: the last channel is the prior's labels.
    """

    EMBEDDING = 16
    STRENGTH = 6.0

    def __init__(
        self, net: nn.Module, classes: int, embedding: int = EMBEDDING, strength: float = STRENGTH
    ) -> None:
        super().__init__()
        self.net = net
        self.classes = classes
        self.embedding = nn.Embedding(classes, embedding)
        self.strength = nn.Parameter(torch.tensor(float(strength)))
        heads = [getattr(net, "head", None), *getattr(net, "aux_heads", [])]
        for head in heads:
            if isinstance(head, nn.Sequential):
                head = next((m for m in reversed(head) if hasattr(m, "weight")), None)
            if head is not None and getattr(head, "weight", None) is not None:
                nn.init.zeros_(head.weight)
                if head.bias is not None:
                    nn.init.zeros_(head.bias)

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    @property
    def size_divisor(self) -> int:
        """What input sizes must be divisible by (the wrapped network's)."""
        return self.net.size_divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index, out = self._corrections(x)
        if isinstance(out, (list, tuple)):  # deep supervision: the prior at each head's size
            return type(out)(o + self._prior(index, o) for o in out)
        return out + self._prior(index, out)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        """What the network adds to the prior's logits (the main head's): ``forward(x)``
        minus ``strength`` x one-hot of the prior, so that the prior can be added on
        another grid (:mod:`scseg.inference.prior`, at the input's own resolution)."""
        out = self._corrections(x)[1]
        return out[0] if isinstance(out, (list, tuple)) else out

    def _corrections(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = x[:, -1].round().long().clamp_(0, self.classes - 1)
        described = self.embedding(index).movedim(-1, 1).to(x.dtype)
        return index, self.net(torch.cat([x[:, :-1], described], 1))

    def _prior(self, index: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The prior's logits (``strength`` x one-hot) on ``logits``' grid."""
        onehot = F.one_hot(downsample_labels(index, logits.shape[2:]), self.classes)
        return self.strength.to(logits.dtype) * onehot.movedim(-1, 1).to(logits.dtype)
