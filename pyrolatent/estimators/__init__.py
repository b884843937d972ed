"""User-facing estimators: a Pyro model + guide + the shared Trainer, with fit/encode/save/load.

:class:`RVAE`, :class:`SSRVAE`, :class:`VolumeVAE` and :class:`NMF` (loaded on first use).
"""
