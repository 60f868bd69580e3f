from __future__ import annotations

import logging
import sys

from training.ml.cli import main

logging.basicConfig(format="%(message)s")
logging.getLogger("training.ml").setLevel(logging.INFO)  # stage timings
sys.exit(main())
