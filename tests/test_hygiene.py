"""Private places for state and code: EasyOCR's network directory."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from ocrkie.engines import easy


def test_easyocr_network_directory_is_private_and_gone_after_loading(monkeypatch) -> None:
    from ocrkie.engines.torch_device import import_torchvision

    import_torchvision()  # before easyocr: see its docstring
    import easyocr

    seen: dict[str, int | str] = {}
    build = easyocr.Reader.__init__

    def spy(self, *args, **kwargs) -> None:
        path = kwargs["user_network_directory"]
        info = os.lstat(path)
        seen.update(path=path, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid)
        build(self, *args, **kwargs)
        assert path in sys.path  # what EasyOCR does with it

    monkeypatch.setattr(easyocr.Reader, "__init__", spy)
    easy.load_reader("cpu")
    assert seen["mode"] == 0o700 and seen["uid"] == os.getuid()
    assert Path(seen["path"]).name.startswith("ocrkie-easyocr-")
    assert seen["path"] not in sys.path and not Path(seen["path"]).exists()
