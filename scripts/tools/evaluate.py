"""Score results against ground truth: ``python scripts/tools/evaluate.py results truth_dir``."""

from ocrkie.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
