"""sharpmem: an executable reproduction of "On memorization and privacy risks of
sharpness aware minimization".

Modules map onto the paper: :mod:`~sharpmem_lib.optim` (SAM, eq. 4, SharpReg eq. 6),
:mod:`~sharpmem_lib.data`, :mod:`~sharpmem_lib.splits`, :mod:`~sharpmem_lib.models`,
:mod:`~sharpmem_lib.train` (with the shared tensor, device and seed helpers of
:mod:`~sharpmem_lib.tensors`), :mod:`~sharpmem_lib.experiments` (cached runs),
:mod:`~sharpmem_lib.ensemble` (with its CPU kernel :mod:`~sharpmem_lib.mlp_kernel`) and
:mod:`~sharpmem_lib.memorization` (§3.2, eqs. 1-3), :mod:`~sharpmem_lib.subsampling` (the subset
models behind them), :mod:`~sharpmem_lib.buckets` (chapter 2's analysis),
:mod:`~sharpmem_lib.toy` (§3.1, Fig. 1), :mod:`~sharpmem_lib.attacks` and
:mod:`~sharpmem_lib.privacy` (§2.1, §4), :mod:`~sharpmem_lib.defenses` and
:mod:`~sharpmem_lib.sharpness` (§5), :mod:`~sharpmem_lib.plots`, :mod:`~sharpmem_lib.report`,
:mod:`~sharpmem_lib.provenance`, :mod:`~sharpmem_lib.profiles`, :mod:`~sharpmem_lib.pipeline`.

Cache keys do not use this version: they use the integer ``CACHE_VERSION`` of
:mod:`~sharpmem_lib.store`, which every change that alters a cached result bumps.
"""

__version__ = "0.3.0"
