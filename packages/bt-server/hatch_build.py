"""Build hook: ship the repository's sample bars (``examples/data/sample.csv``) with bt-server.

An installed server has no checkout to find ``examples/`` in, yet it offers the shared dataset
``sample`` (``bt_server.datasets.sample_file``). The file lives once in git, outside this
package, so a static ``force-include`` cannot serve every build: the sdist is built from the
checkout (the file is two levels up), and the wheel from the unpacked sdist, where the checkout
is gone. The sdist therefore carries it at ``src/bt_server/sample.csv``, where the wheel's
package directory picks it up; a wheel built straight from the checkout takes it from
``examples/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SAMPLE = "sample.csv"


class SampleDataHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        # An editable install runs from the checkout, where sample_file() finds examples/.
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        in_package = root / "src" / "bt_server" / SAMPLE
        if in_package.is_file():  # an unpacked sdist: the wheel's package dir already has it
            return
        checkout = root.parent.parent / "examples" / "data" / SAMPLE
        if not checkout.is_file():
            raise FileNotFoundError(
                f"bt-server build: the sample bars are neither at {in_package} (an sdist) "
                f"nor at {checkout} (a checkout of the repository)"
            )
        target = f"src/bt_server/{SAMPLE}" if self.target_name == "sdist" else f"bt_server/{SAMPLE}"
        build_data["force_include"][str(checkout)] = target
