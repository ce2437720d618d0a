import sys

from include.album.cli import main

sys.exit(main())
