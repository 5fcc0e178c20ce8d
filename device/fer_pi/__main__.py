"""python -m fer_pi: the same as the fer-pi command."""

import sys

from fer_pi.app.cli import main

sys.exit(main())
