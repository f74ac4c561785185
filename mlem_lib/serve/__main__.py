"""``python -m mlem_lib.serve [serve]``: the same as :mod:`mlem_lib.serve.container`."""

import sys

from mlem_lib.serve.container import main

sys.exit(main())
