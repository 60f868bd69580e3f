from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

# The benches run on the embedded settings, whatever the shell has.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"

from bench import BENCHES  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=BENCHES, help=", ".join(BENCHES))
    args = parser.parse_args()
    figures, failures = [], []
    for name in args.names:
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            results = module.run()
        except Exception:  # one broken bench must not hide the others
            traceback.print_exc()
            failures.append(name)
            continue
        for fig in results:
            verdict = {True: "ok", False: "MISSED", None: "-"}[fig.meets_target]
            target = f"{fig.target_ratio:g}" if fig.target_ratio is not None else "-"
            print(
                f"  {fig.name}: {fig.value:.4g} {fig.unit} vs baseline "
                f"{fig.baseline:.4g} -> ratio {fig.ratio:.3f} "
                f"(target {target}, {fig.better} is better) {verdict}"
                + (f"  [{fig.notes}]" if fig.notes else ""),
                flush=True,
            )
            figures.append({"bench": name, **fig.as_dict()})
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    kept = [f for f in existing if f.get("bench") not in set(args.names)]
    RESULTS.write_text(json.dumps(kept + figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
