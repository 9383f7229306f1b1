"""twinsep: virtual surgical planning for separating craniopagus conjoined twins.

The library is organised as one module per pipeline stage (``ingest``, ``tissues``,
``identity``, ...). Stages talk through the case folder (see ``docs/case-format.md``)
and small typed result objects.
"""

__version__ = "0.1.0"
