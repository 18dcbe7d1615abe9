"""python3 -m grpchelper: the grpchelper command-line tool (grpchelper._tool)."""
import sys

from ._tool import main

sys.exit(main())
