"""The Med-GRIT-270k evaluation protocol, standard and strict readings.

>>> from clinkd.eval import evaluate, write_report
>>> report = evaluate(["pred_VG.jsonl", "pred_GC.jsonl"])      # doctest: +SKIP
>>> write_report(report, "runs/eval")                          # doctest: +SKIP

Modules: :mod:`~clinkd.eval.predictions` (records, reader), :mod:`~clinkd.eval.cleaning`,
:mod:`~clinkd.eval.grounding` (boxes, IoU, matching), :mod:`~clinkd.eval.classification` (RO),
:mod:`~clinkd.eval.captions` + :mod:`~clinkd.eval.coco_java` (pycocoevalcap with one JVM each),
:mod:`~clinkd.eval.standard`, :mod:`~clinkd.eval.strict`, :mod:`~clinkd.eval.paired` (intervals and paired
differences of the standard reading across models), :mod:`~clinkd.eval.report` (+ plots),
:mod:`~clinkd.eval.naive` (the slow per-modality reference used to check equality).
"""

from clinkd.eval.evaluator import Report, evaluate
from clinkd.eval.predictions import MODALITIES, TASKS, Prediction, read_predictions
from clinkd.eval.report import write_report

__all__ = ["MODALITIES", "TASKS", "Prediction", "Report", "evaluate", "read_predictions", "write_report"]
