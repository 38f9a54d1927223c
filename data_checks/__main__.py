import sys

from data_checks.cli import main

sys.exit(main())
