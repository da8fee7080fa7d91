"""The physician's workstation in the browser (`yoho serve`).

A FastAPI back end (``yoho.web.app``) with a job queue (``yoho.web.jobs``) serves a plain
HTML/JS/CSS front end from ``yoho/web/static``: open an image, draw the ROI and circles, save
the annotation, segment in the background with live progress, look at and download the result.
Nothing is fetched from or sent to any other host. This package imports FastAPI lazily, so the
rest of YOHO works without the ``web`` extra.
"""
