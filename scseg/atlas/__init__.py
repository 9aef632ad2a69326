"""The atlas: a labelled template registered to a subject, and models that refine it.

One room for what parcellation from a template needs: the registration baselines
(:mod:`~scseg.atlas.registration`: affine, then demons), native subjects moved out of the
template's space (:mod:`~scseg.atlas.native`), the registered labels as training data
(:mod:`~scseg.atlas.priors`) and as the input of a model that corrects them
(:mod:`~scseg.atlas.model`). It builds on the volume readers (:mod:`scseg.io`) and the
grid helpers of :mod:`scseg.layers` only; the data modules, the models and inference use
it through the names below (prediction with a prior, :mod:`scseg.inference.prior`, is
inference: it runs the sliding window and maps logits back to the input's grid).

Names are loaded on first use, so reading a sample's names needs neither torch nor MONAI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scseg.lazy import lazy_getattr

__all__ = [
    "REGISTRATIONS",
    "LabelPrior",
    "check_prior_options",
    "prior_channel",
    "prior_items",
    "register_labels",
    "residual_warp",
    "write_native_subjects",
]

_HOMES = {
    "REGISTRATIONS": "scseg.atlas.registration",
    "LabelPrior": "scseg.atlas.model",
    "check_prior_options": "scseg.atlas.priors",
    "prior_channel": "scseg.atlas.priors",
    "prior_items": "scseg.atlas.priors",
    "register_labels": "scseg.atlas.registration",
    "residual_warp": "scseg.atlas.priors",
    "write_native_subjects": "scseg.atlas.native",
}

if TYPE_CHECKING:
    from scseg.atlas.model import LabelPrior
    from scseg.atlas.native import write_native_subjects
    from scseg.atlas.priors import check_prior_options, prior_channel, prior_items, residual_warp
    from scseg.atlas.registration import REGISTRATIONS, register_labels

__getattr__ = lazy_getattr(__name__, _HOMES)
