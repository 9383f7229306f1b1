"""``twinsep identify``: which twin owns each voxel, the shared anatomy, the Stone &
Goodrich classification and the junction figure.

Pure core: :mod:`~twinsep.identify.identity` (the owner map), :mod:`~twinsep.identify.shared`
(shared vessels, junction and brain contact), :mod:`~twinsep.identify.classification`,
:mod:`~twinsep.identify.figures`; case layer and the stage: :mod:`twinsep.identify.case`.
"""

from twinsep.identify.case import STAGE, IdentifySettings, identify_case, read_landmarks
from twinsep.identify.classification import Classification, classify
from twinsep.identify.identity import IdentityResult, dice_scores, find_seeds, identify
from twinsep.identify.shared import SharedAnatomy, measure_shared

__all__ = [
    "STAGE",
    "Classification",
    "IdentifySettings",
    "IdentityResult",
    "SharedAnatomy",
    "classify",
    "dice_scores",
    "find_seeds",
    "identify",
    "identify_case",
    "measure_shared",
    "read_landmarks",
]
