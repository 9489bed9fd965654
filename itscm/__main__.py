import sys

from itscm.cli import main

sys.exit(main())
