from __future__ import annotations

import sys

from training.ml.cli import main

sys.exit(main())
