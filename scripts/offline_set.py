"""Write one of the offline study datasets as an .npz: python scripts/offline_set.py NAME OUT.npz.

Names: digits, grey-crops, colour-crops (augmentor.data.offline_sets says what each holds).
"""

from __future__ import annotations

import sys
from pathlib import Path

from augmentor.data.offline_sets import OFFLINE_SETS, write_offline_set

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in OFFLINE_SETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(OFFLINE_SETS)}}} OUT.npz")
    print(write_offline_set(sys.argv[1], Path(sys.argv[2])))
