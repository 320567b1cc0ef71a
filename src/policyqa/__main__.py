"""`python -m policyqa` runs the command-line interface."""

import sys

from policyqa.cli import main

sys.exit(main())
