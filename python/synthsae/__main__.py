import sys

from synthsae.cli import main

sys.exit(main())
