"""twinsep: virtual surgical planning for separating craniopagus conjoined twins.

The library is organised as one package per command (``ingest``, ``segment``,
``identify``, ``separate``, ``simulate``, ``models``, ``view``, ``schedule``, ``report``,
``compare``, ``phantom``), each with a pure core and a case layer declaring its
:class:`~twinsep.stage.Stage` (see ``docs/architecture.md``). Stages talk through the case
folder (see ``docs/case-format.md``) and small typed result objects.
"""

__version__ = "0.1.0"

import logging as _logging

# a library logs, the application decides where to (the case's log, --verbose)
_logging.getLogger("twinsep").addHandler(_logging.NullHandler())
