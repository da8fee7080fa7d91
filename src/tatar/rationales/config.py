"""Configuration of the rationale pipeline: the teacher and judge endpoints, rule limits and the
judge's keep policy, read from one YAML file.

Any string in the file may name environment variables as `${VAR}` or `${VAR:-default}`, so base
URLs and model names can come from the environment. The API key comes from `api_key_env` (the
name of a variable) or, discouraged, a literal `api_key`; it is never written to any output
(`public_dict` drops it).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tatar.prompts import TASKS

# Criteria the judge scores (0-5) per task; the names are the released judges' JSON keys.
JUDGE_CRITERIA: dict[str, tuple[str, ...]] = {
    "iqa": ("visual_fidelity", "technical_rigor", "score_consistency"),
    "iaa": (
        "attribute_coverage",
        "groundedness_no_fabrication",
        "reasoning_cohesion",
        "score_derivation_smoothness",
    ),
}

# Sampling as the released generators and judges used it, with room for a 50-word IQA think
# (the released 140 tokens cut some off) and 150-word IAA narratives.
DEFAULT_SAMPLING: dict[str, dict[str, dict[str, Any]]] = {
    "teacher": {
        "iqa": {"temperature": 0.3, "top_p": 0.8, "max_tokens": 256},
        "iaa": {"temperature": 0.2, "top_p": 0.9, "max_tokens": 600},
    },
    "judge": {
        "iqa": {"temperature": 0.0, "max_tokens": 512},
        "iaa": {"temperature": 0.0, "max_tokens": 640},
    },
}

_ENDPOINT_KEYS = {
    "base_url",
    "model",
    "api_key",
    "api_key_env",
    "vision",
    "sampling",
    "extra_body",
    "image_max_pixels",
    "seed",
}
_RUN_KEYS = {"concurrency", "timeout_s", "max_retries", "backoff_s", "backoff_max_s"}
_STAGE_KEYS = _ENDPOINT_KEYS | _RUN_KEYS | {"per_task"}
_TOP_KEYS = {"image_root", "teacher", "judge", "rules", "judge_policy"}
_RULE_KEYS = {"iqa_words", "iaa_words", "iaa_min_aspects"}
_POLICY_KEYS = {"require_keep", "must_exceed"}
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Endpoint:
    """One model behind an OpenAI-compatible chat endpoint, as used for one task."""

    base_url: str
    model: str
    vision: bool = True
    sampling: Mapping[str, Any] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    image_max_pixels: int | None = None
    seed: int | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def public_dict(self) -> dict[str, Any]:
        """Everything but the key (a dataset's metadata says how it was made, not how to pay)."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "vision": self.vision,
            "sampling": dict(self.sampling),
            "extra_body": dict(self.extra_body),
            "image_max_pixels": self.image_max_pixels,
            "seed": self.seed,
            "api_key_env": self.api_key_env,
        }

    def call_settings(self) -> dict[str, Any]:
        """What shapes the model's answers (a resume must not mix answers made differently)."""
        d = self.public_dict()
        del d["base_url"], d["api_key_env"]  # the same model may move servers
        return d


@dataclass(frozen=True)
class StageConfig:
    """The endpoint per task of one stage (teacher or judge) and how hard to push it."""

    endpoints: Mapping[str, Endpoint]
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    def endpoint(self, task: str) -> Endpoint:
        return self.endpoints[task]

    def public_dict(self) -> dict[str, Any]:
        return {
            "endpoints": {t: e.public_dict() for t, e in self.endpoints.items()},
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "backoff_s": self.backoff_s,
            "backoff_max_s": self.backoff_max_s,
        }


@dataclass(frozen=True)
class RuleConfig:
    """Limits of the rule checks (inclusive word ranges of the `<think>` text)."""

    iqa_words: tuple[int, int] = (30, 50)
    iaa_words: tuple[int, int] = (100, 150)
    iaa_min_aspects: int = 5

    def words(self, task: str) -> tuple[int, int]:
        return self.iqa_words if task == "iqa" else self.iaa_words

    def public_dict(self) -> dict[str, Any]:
        return {
            "iqa_words": list(self.iqa_words),
            "iaa_words": list(self.iaa_words),
            "iaa_min_aspects": self.iaa_min_aspects,
        }


@dataclass(frozen=True)
class JudgePolicy:
    """When a judged rationale is kept: the judge said keep (if required) and every listed
    criterion score is strictly above its bound (the released code: grounding and
    consistency > 2)."""

    require_keep: bool = True
    must_exceed: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {
            "iqa": {"visual_fidelity": 2.0, "score_consistency": 2.0},
            "iaa": {"groundedness_no_fabrication": 2.0, "reasoning_cohesion": 2.0},
        }
    )

    def public_dict(self) -> dict[str, Any]:
        return {
            "require_keep": self.require_keep,
            "must_exceed": {t: dict(v) for t, v in self.must_exceed.items()},
        }


@dataclass(frozen=True)
class RationaleConfig:
    teacher: StageConfig | None = None
    judge: StageConfig | None = None
    rules: RuleConfig = field(default_factory=RuleConfig)
    judge_policy: JudgePolicy = field(default_factory=JudgePolicy)
    image_root: Path | None = None
    source: Path | None = None

    def public_dict(self) -> dict[str, Any]:
        return {
            "source": None if self.source is None else str(self.source),
            "image_root": None if self.image_root is None else str(self.image_root),
            "teacher": None if self.teacher is None else self.teacher.public_dict(),
            "judge": None if self.judge is None else self.judge.public_dict(),
            "rules": self.rules.public_dict(),
            "judge_policy": self.judge_policy.public_dict(),
        }


class _Reader:
    """Validates one config file; every error names the file and the key."""

    def __init__(self, path: Path, env: Mapping[str, str]):
        self.path = path
        self.env = env

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.path}: {key}: {problem}")

    def expand(self, key: str, value: Any) -> Any:
        if isinstance(value, str):

            def sub(m: re.Match) -> str:
                name, default = m.group(1), m.group(2)
                if name in self.env:
                    return self.env[name]
                if default is not None:
                    return default
                raise self.fail(key, f"environment variable {name} is not set")

            return _ENV_RE.sub(sub, value)
        if isinstance(value, dict):
            return {k: self.expand(f"{key}.{k}" if key else k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return value

    def mapping(self, key: str, value: Any, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(
                key, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return value

    def positive_int(self, key: str, value: Any, *, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, value: Any, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not math.isfinite(value) or value < minimum:
            raise self.fail(key, f"expected a finite number >= {minimum}, got {value!r}")
        return float(value)

    def word_range(self, key: str, value: Any) -> tuple[int, int]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.fail(key, f"expected [min, max], got {value!r}")
        lo = self.positive_int(key, value[0])
        hi = self.positive_int(key, value[1])
        if hi < lo:
            raise self.fail(key, f"max ({hi}) is below min ({lo})")
        return lo, hi

    def endpoint(self, key: str, stage: str, task: str, raw: dict[str, Any]) -> Endpoint:
        base_url = raw.get("base_url")
        if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
            raise self.fail(f"{key}.base_url", f"expected an http(s) URL, got {base_url!r}")
        model = raw.get("model")
        if not isinstance(model, str) or not model.strip():
            raise self.fail(f"{key}.model", "a model name is required")
        vision = raw.get("vision", True)
        if not isinstance(vision, bool):
            raise self.fail(f"{key}.vision", f"expected true or false, got {vision!r}")
        if not isinstance(raw.get("sampling") or {}, dict):
            raise self.fail(f"{key}.sampling", "expected a mapping of request parameters")
        sampling = {**DEFAULT_SAMPLING[stage][task], **(raw.get("sampling") or {})}
        extra_body = raw.get("extra_body") or {}
        if not isinstance(extra_body, dict):
            raise self.fail(f"{key}.extra_body", "expected a mapping of request fields")
        for reserved in ("model", "messages", "stream"):
            if reserved in sampling or reserved in extra_body:
                raise self.fail(key, f"'{reserved}' is set by the pipeline, not the config")
        max_pixels = raw.get("image_max_pixels")
        if max_pixels is not None:
            max_pixels = self.positive_int(f"{key}.image_max_pixels", max_pixels, minimum=784)
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise self.fail(f"{key}.seed", f"expected an integer, got {seed!r}")
        api_key = raw.get("api_key")
        api_key_env = raw.get("api_key_env")
        if api_key_env is not None:
            if not isinstance(api_key_env, str) or not api_key_env:
                raise self.fail(f"{key}.api_key_env", "expected the name of a variable")
            if api_key is None:
                api_key = self.env.get(api_key_env)
                if not api_key:
                    raise self.fail(
                        f"{key}.api_key_env", f"environment variable {api_key_env} is not set"
                    )
        if api_key is not None and not isinstance(api_key, str):
            raise self.fail(f"{key}.api_key", "expected a string")
        return Endpoint(
            base_url=base_url.rstrip("/"),
            model=model.strip(),
            vision=vision,
            sampling=sampling,
            extra_body=extra_body,
            image_max_pixels=max_pixels,
            seed=seed,
            api_key_env=api_key_env,
            api_key=api_key or None,
        )

    def stage(self, stage: str, raw: Any) -> StageConfig:
        raw = self.mapping(stage, raw, _STAGE_KEYS)
        per_task = self.mapping(f"{stage}.per_task", raw.get("per_task"), set(TASKS))
        base = {k: v for k, v in raw.items() if k in _ENDPOINT_KEYS}
        endpoints = {}
        for task in TASKS:
            key = f"{stage}.per_task.{task}"
            override = self.mapping(key, per_task.get(task), _ENDPOINT_KEYS)
            merged = {**base, **override}
            # sampling and extra_body merge key by key, so an override can change one parameter
            for sub in ("sampling", "extra_body"):
                if isinstance(base.get(sub), dict) and isinstance(override.get(sub), dict):
                    merged[sub] = {**base[sub], **override[sub]}
            endpoints[task] = self.endpoint(key if task in per_task else stage, stage, task, merged)
        return StageConfig(
            endpoints=endpoints,
            concurrency=self.positive_int(f"{stage}.concurrency", raw.get("concurrency", 8)),
            timeout_s=self.number(f"{stage}.timeout_s", raw.get("timeout_s", 120.0), minimum=0.01),
            max_retries=self.positive_int(
                f"{stage}.max_retries", raw.get("max_retries", 5), minimum=0
            ),
            backoff_s=self.number(f"{stage}.backoff_s", raw.get("backoff_s", 1.0)),
            backoff_max_s=self.number(f"{stage}.backoff_max_s", raw.get("backoff_max_s", 60.0)),
        )

    def rules(self, raw: Any) -> RuleConfig:
        raw = self.mapping("rules", raw, _RULE_KEYS)
        d = RuleConfig()
        return RuleConfig(
            iqa_words=self.word_range("rules.iqa_words", raw.get("iqa_words", d.iqa_words)),
            iaa_words=self.word_range("rules.iaa_words", raw.get("iaa_words", d.iaa_words)),
            iaa_min_aspects=self.positive_int(
                "rules.iaa_min_aspects", raw.get("iaa_min_aspects", d.iaa_min_aspects), minimum=0
            ),
        )

    def policy(self, raw: Any) -> JudgePolicy:
        raw = self.mapping("judge_policy", raw, _POLICY_KEYS)
        d = JudgePolicy()
        require_keep = raw.get("require_keep", d.require_keep)
        if not isinstance(require_keep, bool):
            raise self.fail("judge_policy.require_keep", "expected true or false")
        must_exceed = {t: dict(v) for t, v in d.must_exceed.items()}
        given = self.mapping("judge_policy.must_exceed", raw.get("must_exceed"), set(TASKS))
        for task, bounds in given.items():
            key = f"judge_policy.must_exceed.{task}"
            bounds = self.mapping(key, bounds, set(JUDGE_CRITERIA[task]))
            # a task listed replaces its defaults, so a criterion can be dropped
            must_exceed[task] = {
                c: self.number(f"{key}.{c}", v, minimum=-1.0) for c, v in bounds.items()
            }
        return JudgePolicy(require_keep=require_keep, must_exceed=must_exceed)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RationaleConfig:
    """Read and validate a rationale-pipeline config (YAML).

    Parameters
    ----------
    path : the YAML file.
    env : the environment used for `${VAR}` references and `api_key_env` (default `os.environ`).

    Raises
    ------
    FileNotFoundError : the file does not exist.
    ValueError : the file is not valid YAML or a key is missing, unknown or of the wrong type;
        the message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    from tatar.textio import read_yaml

    raw = read_yaml(path)
    reader = _Reader(path, os.environ if env is None else env)
    raw = reader.expand("", reader.mapping("(top level)", raw, _TOP_KEYS))
    if raw.get("teacher") is None and raw.get("judge") is None:
        raise ValueError(f"{path}: needs a 'teacher' or a 'judge' section (or both)")
    image_root = raw.get("image_root")
    if image_root is not None and not isinstance(image_root, str):
        raise reader.fail("image_root", "expected a folder path")
    return RationaleConfig(
        teacher=None if raw.get("teacher") is None else reader.stage("teacher", raw["teacher"]),
        judge=None if raw.get("judge") is None else reader.stage("judge", raw["judge"]),
        rules=reader.rules(raw.get("rules")),
        judge_policy=reader.policy(raw.get("judge_policy")),
        image_root=None if image_root is None else (path.parent / image_root).resolve(),
        source=path.resolve(),
    )
