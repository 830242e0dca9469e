"""The runs the workflow performs, each from settings to files, by stage.

Each runner takes plain settings (a panel's dict from config.yaml, paths, a seed) and writes
its outputs atomically, with provenance, on the skeleton every runner shares
(:class:`job.Job`). The workflow scripts only unpack ``snakemake`` objects and call one; a
user can call them from Python just as well. Progress goes to the standard ``logging``
loggers ``sharpminima.*`` (level INFO).

- :mod:`.job`: the skeleton (clock, threads and device, data, fingerprint and resumable
  state, provenance) and the final numbers of a trained run;
- :mod:`.train`: the dense models, the gradual runs (LOBSTER, IMP, GMP), the retraining of
  their masks, one-shot pruning;
- :mod:`.landscape`: G and 1-S, the plane, its maps, the Hessian, the points and the probe;
- :mod:`.features`: layer similarity to the dense network, the transfer probe.
"""
