"""`python -m gan_platform +experiment=wgan [overrides]`: compose the config, check it, train."""

from __future__ import annotations

import sys

from gan_platform.cli import main

if __name__ == "__main__":
    sys.exit(main())
