import sys

from include.album.admin.cli import main

sys.exit(main())
