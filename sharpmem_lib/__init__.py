"""sharpmem: an executable reproduction of "On memorization and privacy risks of
sharpness aware minimization".

Modules map onto the paper: :mod:`~sharpmem_lib.optim` (SAM, eq. 4, SharpReg eq. 6),
:mod:`~sharpmem_lib.data`, :mod:`~sharpmem_lib.models`, :mod:`~sharpmem_lib.train`,
:mod:`~sharpmem_lib.toy` (§3.1, Fig. 1), :mod:`~sharpmem_lib.plots`,
:mod:`~sharpmem_lib.provenance`, :mod:`~sharpmem_lib.profiles`.
"""

__version__ = "0.1.0"
