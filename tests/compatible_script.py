"""TEST ONLY: ``python compatible_script.py SCRIPT ARGS`` runs SCRIPT with the compatible Elasticsearch node.

For tests that run a repository script in a subprocess against osmem-server
with the Elasticsearch backend (see ``servers.py``); the script itself runs
unchanged, as ``__main__``.
"""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import use_compatible_node  # noqa: E402

if __name__ == "__main__":
    use_compatible_node()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
