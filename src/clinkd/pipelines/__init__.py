"""Pipelines: scripts of stages that go from data to a result, built on the library's stages.

- :mod:`clinkd.pipelines.stages` — running a training stage from a typed run config, reused when it was
  already made with the same config, weights and data (what the demo and ``scripts/`` build on);
- :mod:`clinkd.pipelines.demo` — ``clinkd demo``, the ClinKD ablation on the synthetic benchmark;
- :mod:`clinkd.pipelines.demo_report` — the demo's ``results.md``.

Nothing is imported here: ``clinkd --help`` should not pay for torch.
"""
