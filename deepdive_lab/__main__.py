"""`python -m deepdive_lab` runs the `deepdive-lab` command."""

import sys

from deepdive_lab.cli import main

sys.exit(main())
