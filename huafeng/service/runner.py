"""What a worker thread does with a job: call the library, write the result under the job's id in the
results folder, keep the folder under its size cap."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..api import stylize_image
from ..image import save_image
from ..provenance import Provenance, describe
from .config import ServiceConfig
from .jobs import RESULT_NAME, Job, evict_oldest
from .params import build_stylizer


class Runner:
    """``runner(job, report) -> result path``, for image, video and train jobs."""

    def __init__(self, config: ServiceConfig, results: Path) -> None:
        self.config, self.results = config, results

    def __call__(self, job: Job, report) -> Path:
        out = {"video": self._video, "train": self._train}.get(job.kind, self._image)(job, report)
        # only results count towards the cap: the uploads of queued jobs are never evicted
        evict_oldest(self.results, self.config.results_cap_bytes, only=lambda p: bool(RESULT_NAME.match(p.name)))
        return out

    def _settings(self, p: dict) -> dict:
        return {**self.config.method_defaults.get(p["method"], {}), **p["settings"]}

    def _record(self, p: dict, **controls) -> Provenance:
        """What made the result (huafeng.provenance): bundled styles by name, an uploaded painting by its
        pixels' sha256; never a path."""
        return describe(p["method"], p.get("style_names") or p["styles"], self._settings(p), **controls)

    def _image(self, job: Job, report) -> Path:
        p = job.params
        rgb, alpha = stylize_image(p["content"], p["styles"], p["method"], strength=p["strength"],
                                   preserve_color=p["preserve_color"], progress=report, **self._settings(p))
        record = self._record(p, strength=p["strength"], preserve_color=p["preserve_color"])
        return save_image(rgb, self.results / f"{job.id}.png", alpha=alpha, provenance=record)

    def _video(self, job: Job, report) -> Path:
        from ..video import VideoSettings, stylize_video

        p = job.params
        stylizer = build_stylizer(self.config, p["method"], p["settings"])
        out = self.results / f"{job.id}.mp4"
        try:
            stylize_video(p["video"], out, stylizer, p["styles"], [1.0] * len(p["styles"]),
                          settings=VideoSettings(consistency=p["consistency"]), progress=report,
                          provenance=self._record(p))
        finally:
            Path(p["video"]).unlink(missing_ok=True)
        return out

    def _train(self, job: Job, report) -> Path:
        from ..train.style import StyleTrainSettings, train_style

        p = job.params
        work = Path(p["work"])  # made by the route, and recorded as the job's scratch
        try:
            assert self.config.train_content_dir is not None  # the route queues train jobs only where it is set
            summary = train_style(StyleTrainSettings(painting=p["painting"], content_dir=self.config.train_content_dir,
                                                     out=str(work), name="style", minutes=p["minutes"],
                                                     **self.config.train_overrides), progress=report)
            out = self.results / f"{job.id}.safetensors"
            shutil.copyfile(summary["weights"], out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            Path(p["painting"]).unlink(missing_ok=True)
        return out
