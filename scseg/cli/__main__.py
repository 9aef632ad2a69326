import sys

from scseg.cli import main

sys.exit(main())
