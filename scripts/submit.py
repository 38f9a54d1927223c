"""Submit a training run to SLURM: `python scripts/submit.py [--dry-run] [OVERRIDES]` (see --help).

The same as the `gatetune-submit` command; the code is gatetune/submit.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatetune.submit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
