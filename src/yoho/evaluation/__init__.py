"""Evaluation of YOHO and its baselines over a folder of image/mask pairs.

Modules: `dataset` (folder reader, subsets), `settings` (protocol settings and ablations),
`methods` (one method on one image), `runner` (per-image jobs, local loop), `ray_engine`
(the same jobs on Ray), `store` (resumable CSV), `report` (tables and figures), `sweep`
(protocol sweep).
"""
