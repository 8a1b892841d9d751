import sys

from pgax.cli import main

sys.exit(main())
