"""The `rasa` command line with warnings silenced, for a clean terminal chat.

Sanic adds `filterwarnings("once", DeprecationWarning)` when it is imported and Rasa adds
"once" for UserWarning, which undoes PYTHONWARNINGS=ignore. Importing Sanic and matplotlib (whose
pyparsing use warns at import) first, with warnings ignored, keeps the chat clean.
"""

import sys
import warnings

import sanic  # noqa: F401 - imported for its side effect on the warning filters

warnings.simplefilter("ignore")

import matplotlib.pyplot  # noqa: E402,F401 - warns at import; import it while ignored
from rasa.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "rasa"
    main()
