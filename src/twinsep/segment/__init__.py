"""``twinsep segment``: tissue labels (scalp, bone, CSF/dura, brain, vessel) from the CT,
or imported from a label map made elsewhere.

Pure core: :mod:`twinsep.segment.core` (:func:`segment_ct`); case layer and the stage:
:mod:`twinsep.segment.case`.
"""

from twinsep.segment.case import (
    STAGE,
    SegmentResult,
    SegmentSettings,
    import_label_map,
    load_label_map,
    segment_case,
    settings_from_json,
)
from twinsep.segment.core import CTSettings, segment_ct, tissue_stats

__all__ = [
    "STAGE",
    "CTSettings",
    "SegmentResult",
    "SegmentSettings",
    "import_label_map",
    "load_label_map",
    "segment_case",
    "segment_ct",
    "settings_from_json",
    "tissue_stats",
]
