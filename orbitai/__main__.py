import sys

from orbitai.cli import main

sys.exit(main())
