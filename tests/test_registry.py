from __future__ import annotations

import pytest

import scseg
from scseg.registry import Registry


def test_registry_register_get_and_errors() -> None:
    reg: Registry = Registry("thing")

    @reg.register("b")
    def make_b(n: int, *, scale: int = 1) -> int:
        return n * scale

    reg.register("a")(lambda n: n)
    assert reg.names() == ["a", "b"]
    assert reg.build("b", 2, scale=3) == 6
    with pytest.raises(ValueError, match="unknown thing 'c'; choose one of: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda n: n)
    with pytest.raises(ValueError, match="scael"):
        reg.build("b", 2, scael=3)
    assert reg.accepted("b", {"scale": 2, "other": 1}) == {"scale": 2}
    assert reg.resolved("b", n=2) == {"n": 2, "scale": 1}  # defaults filled in
    with pytest.raises(ValueError, match=r"thing 'b'.*scael"):
        reg.resolved("b", n=2, scael=3)


def test_public_api() -> None:
    ours, peers = ["resunet", "smp_unet", "unet"], ["monai_dynunet", "monai_unet", "nnunet_plain",
                                                    "smp_reference"]  # fmt: skip
    assert scseg.list_models() == sorted(ours + peers)
    assert isinstance(scseg.__version__, str)
    with pytest.raises(ValueError, match="nnunet_plain, resunet, smp_reference, smp_unet, unet"):
        scseg.create_model("vnet", spatial_dims=3, in_channels=1, classes=2)
