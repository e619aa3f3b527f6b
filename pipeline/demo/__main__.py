import sys

from pipeline.demo.live import main

sys.exit(main())
