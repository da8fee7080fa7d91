"""Training configuration: one YAML file for both stages, read into validated dataclasses.

Layout (every section but ``model`` is optional)::

    run_dir: ../runs/tiny-cpu          # config copy, logs, checkpoints, curves (--run-dir overrides)
    model:
      path: tiny                       # "tiny" (built into <run_dir>/base-model), a folder or a hub id
      tiny: {hidden_size: 64}          # TinyModelSpec fields (path: tiny only)
      init_kwargs: {dtype: bfloat16}   # from_pretrained keyword arguments (TRL model_init_kwargs)
      freeze_vision_tower: false       # true: the vision encoder is not trained (its projector is)
    processor: {min_pixels: 3136, max_pixels: 1572864}   # at processor construction (these
                                       # spec values are the default for either key)
    data:
      train:                           # sources, read in this order
        - records: koniq_kept.jsonl    # training-record JSONL (e.g. the rationale pipeline's kept.jsonl)
          image_root: /data/koniq      #   optional; default: the file's folder
          limit: 1000                  #   optional
        - dataset: clive               # a known labelled data set (answer-only)
        - toy: {train_iqa: 96}         # synthetic images (tatar.train.toy), written to <run_dir>/toy
      grpo: [...]                      # optional: other sources for GRPO (default: train)
      iqa_fraction: 0.5                # share of IQA samples (smaller task oversampled); null = as read
      seed: 0
    sft:
      thought_dropout: {iqa: 0.8, iaa: 0.0}   # per-task probability of removing <think>
      activation_checkpointing: true   # TRL's default; gradient_checkpointing: the older name
      <any trl.SFTConfig field>: value
    grpo:
      init: sft                        # sft (this run's SFT model), base, or a model folder
      rewards: {preset: paper}         # tatar.rewards.RewardSettings fields
      <any trl.GRPOConfig field>: value
    peft: {r: 16, lora_alpha: 32, target_modules: all-linear}   # peft.LoraConfig fields; null = full
    launch: {num_processes: 8, accelerate_config: accelerate/zero3.yaml}

Relative paths are relative to the config file's folder. Every problem is a ValueError naming
the file and the key (``configs/x.yaml: grpo.num_generations: ...``).

``gradient_checkpointing`` and ``gradient_checkpointing_kwargs`` (in a stage or as ``--FIELD``
overrides) are read as ``activation_checkpointing`` and ``activation_checkpointing_kwargs``, the
names transformers 5.x gives them (the old ones are deprecated aliases there, removed in v6).
Giving both names of one field is an error. The TRL config always receives the new name, and
``activation_checkpointing`` is always set (TRL's own default, on, when the config leaves it out).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tatar.prompts import TASKS
from tatar.rewards import RewardSettings

# TATAR's defaults for the TRL configs (the user's keys override them).
SFT_DEFAULTS: dict[str, Any] = {
    # Image tokens live in the prompt: truncating a vision sequence can cut them or the answer.
    "max_length": None,
    "report_to": [],  # no tracker unless the config or --report-to names one
    "save_strategy": "steps",
    "save_steps": 40,
    "logging_steps": 1,
}
GRPO_DEFAULTS: dict[str, Any] = {
    "num_generations": 8,
    "beta": 0.001,
    "epsilon": 0.2,
    "learning_rate": 1e-6,
    "max_completion_length": 256,
    # Sampling always set explicitly, so a checkpoint's generation_config (Qwen2.5-VL-Instruct
    # ships near-greedy top_k=1, top_p=0.001) cannot collapse a group into identical samples.
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    # Per-sequence length normalisation, as in the paper's GRPO (TRL's default is DAPO).
    "loss_type": "grpo",
    "report_to": [],
    "save_strategy": "steps",
    "save_steps": 100,
    "logging_steps": 1,
}
# Fields TATAR sets itself; a config that sets them is refused (the reason is given).
MANAGED: dict[str, str] = {
    "output_dir": "the stage folder under run_dir",
    "remove_unused_columns": "always False (the rewards and the dropout transform read extra columns)",
    "completion_only_loss": "always True (loss on the completion and its end-of-turn token only)",
    "assistant_only_loss": "SFT data is prompt-completion; the completion mask is used instead",
    "dataset_kwargs": "the vision collator builds every batch",
    "reward_weights": "from grpo.rewards",
    "resume_from_checkpoint": "rerunning the same command resumes from the last checkpoint",
}
# Older names of training-argument fields that transformers 5.x renamed (the old names still work
# there but warn, FutureWarning, and go in v6): a config may use them, they are stored and passed
# to TRL under the new name.
CHECKPOINTING_ALIASES: dict[str, str] = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}
# The spec's image pixel limits, passed at processor construction unless ``processor:`` says
# otherwise (a checkpoint's own limits may be far smaller or larger).
SPEC_PIXELS: dict[str, int] = {"min_pixels": 3136, "max_pixels": 1572864}
SFT_KEYS = {"thought_dropout"}
GRPO_KEYS = {"init", "rewards"}
TOP_KEYS = {"run_dir", "model", "processor", "data", "sft", "grpo", "peft", "launch"}
MODEL_KEYS = {"path", "tiny", "init_kwargs", "freeze_vision_tower"}
PROCESSOR_KEYS = {"min_pixels", "max_pixels"}
DATA_KEYS = {"train", "grpo", "iqa_fraction", "seed"}
LAUNCH_KEYS = {"num_processes", "accelerate_config", "cpu_threads"}
SOURCE_KINDS = ("records", "dataset", "toy")


@dataclass(frozen=True)
class Source:
    """One data source: a records JSONL, a known labelled data set, or synthetic toy data."""

    kind: str  # records | dataset | toy
    value: Any  # path (records), name (dataset), ToySpec fields (toy)
    image_root: Path | None = None
    limit: int | None = None
    where: str = ""  # "<config file>: data.train[0]", for error messages


@dataclass(frozen=True)
class DataConfig:
    train: tuple[Source, ...]
    grpo: tuple[Source, ...]
    iqa_fraction: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    path: str  # "tiny", a folder (resolved) or a hub id
    tiny: dict[str, Any] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    # Train the projector and the language model only (the paper trains everything).
    freeze_vision_tower: bool = False

    @property
    def is_tiny(self) -> bool:
        return self.path == "tiny"


@dataclass(frozen=True)
class SFTStage:
    thought_dropout: dict[str, float]
    args: dict[str, Any]  # SFTConfig keyword arguments (defaults merged)


@dataclass(frozen=True)
class GRPOStage:
    init: str  # "sft", "base" or a folder
    rewards: RewardSettings
    args: dict[str, Any]  # GRPOConfig keyword arguments (defaults merged)


@dataclass(frozen=True)
class LaunchConfig:
    num_processes: int = 1
    accelerate_config: Path | None = None
    # torch threads per process on CPU (None: torch's default). On a small shared machine one
    # thread is many times faster for the tiny model than threads competing for the cores.
    cpu_threads: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    path: Path  # the YAML file
    run_dir: Path
    model: ModelConfig
    processor: dict[str, int]
    data: DataConfig
    sft: SFTStage
    grpo: GRPOStage
    peft: dict[str, Any] | None
    launch: LaunchConfig
    raw: dict[str, Any]  # the file as read (copied into the run folder)

    def with_run_dir(self, run_dir: str | Path) -> TrainConfig:
        return dataclasses.replace(self, run_dir=Path(run_dir).resolve())

    def with_overrides(self, stage: str, overrides: dict[str, Any]) -> TrainConfig:
        """This config with training-argument fields of `stage` replaced (command-line
        overrides, checked like the file's own values; an error names ``--FIELD``)."""
        from trl import GRPOConfig, SFTConfig

        if not overrides:
            return self
        cls = SFTConfig if stage == "sft" else GRPOConfig
        known = _config_fields(cls)
        args = dict(self.sft.args if stage == "sft" else self.grpo.args)
        for name, value in overrides.items():
            if name in MANAGED:
                raise ValueError(f"--{name}: set by TATAR ({MANAGED[name]})")
            target = CHECKPOINTING_ALIASES.get(name, name)
            if target != name and target in overrides:
                raise ValueError(f"--{name}: the older name of --{target}; give one of them")
            if target not in known:
                raise ValueError(f"--{name}: not a field of trl.{cls.__name__}")
            try:
                args[target] = check_trl_value(cls, target, value)
            except ValueError as exc:
                raise ValueError(f"--{name}: {exc}") from None
        if stage == "sft":
            return dataclasses.replace(self, sft=dataclasses.replace(self.sft, args=args))
        return dataclasses.replace(self, grpo=dataclasses.replace(self.grpo, args=args))

    def resolved(self) -> dict[str, Any]:
        """Everything that shapes a run, as plain data (compared on resume, saved with the run)."""
        return {
            "run_dir": str(self.run_dir),
            "model": dataclasses.asdict(self.model),
            "processor": dict(self.processor),
            "data": {
                "train": [_source_dict(s) for s in self.data.train],
                "grpo": [_source_dict(s) for s in self.data.grpo],
                "iqa_fraction": self.data.iqa_fraction,
                "seed": self.data.seed,
            },
            "sft": {"thought_dropout": dict(self.sft.thought_dropout), **self.sft.args},
            "grpo": {
                "init": self.grpo.init,
                "rewards": self.grpo.rewards.to_dict(),
                **self.grpo.args,
            },
            "peft": self.peft,
            "launch": {
                "num_processes": self.launch.num_processes,
                "accelerate_config": str(self.launch.accelerate_config)
                if self.launch.accelerate_config
                else None,
            },
        }


def _source_dict(s: Source) -> dict[str, Any]:
    value = str(s.value) if isinstance(s.value, Path) else s.value
    out: dict[str, Any] = {s.kind: value}
    if s.image_root is not None:
        out["image_root"] = str(s.image_root)
    if s.limit is not None:
        out["limit"] = s.limit
    return out


def _config_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def default_activation_checkpointing(cls) -> bool:
    """Whether the TRL config class `cls` checkpoints activations when neither name is given
    (TRL 1.x: yes, its own default of the old field ``gradient_checkpointing``)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        if isinstance(defaults.get(name), bool):
            return defaults[name]
    return False


def trl_kwargs(cls, args: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the TRL config class `cls`: a stage's `args`, then `overrides`,
    with the older names of `CHECKPOINTING_ALIASES` passed under the new ones and
    ``activation_checkpointing`` always set (to TRL's own default when not given), so that
    transformers never warns about its deprecated ``gradient_checkpointing``: TRL's configs
    default that old field to True, and any config built without the new name would warn."""
    kwargs: dict[str, Any] = {}
    for given in (args, overrides):
        for name, value in given.items():
            kwargs[CHECKPOINTING_ALIASES.get(name, name)] = value
    if kwargs.get("activation_checkpointing") is None:
        kwargs["activation_checkpointing"] = default_activation_checkpointing(cls)
    return kwargs


def without_aliases(section: dict[str, Any]) -> dict[str, Any]:
    """A stage's resolved section with the older names of `CHECKPOINTING_ALIASES` renamed (the
    ``config.resolved.json`` of a run started before they were renamed on loading has them)."""
    out = {}
    for name, value in section.items():
        new = CHECKPOINTING_ALIASES.get(name, name)
        out[new if new not in section else name] = value
    return out


class _Reader:
    """Validation helpers that name the file and the key in every error."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.path}: {key}: {problem}")

    def mapping(self, key: str, value: Any, allowed: set[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(
                    f"{key}.{unknown[0]}" if key else unknown[0],
                    f"unknown key; known: {', '.join(sorted(allowed))}",
                )
        return dict(value)

    def integer(self, key: str, value: Any, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def probability(self, key: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise self.fail(key, f"expected a number in [0, 1], got {value!r}")
        return float(value)

    def file_path(self, key: str, value: Any, *, must_exist: bool = False) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a path, got {value!r}")
        p = Path(value).expanduser()
        p = (p if p.is_absolute() else self.base / p).resolve()
        if must_exist and not p.exists():
            raise self.fail(key, f"not found: {p}")
        return p

    def source(self, key: str, value: Any) -> Source:
        from tatar.train.toy import ToySpec

        if isinstance(value, str):
            raise self.fail(
                key,
                f"write a source as a mapping, e.g. {{records: {value}}} or {{dataset: {value}}}",
            )
        raw = self.mapping(key, value, set(SOURCE_KINDS) | {"image_root", "limit"})
        kinds = [k for k in SOURCE_KINDS if k in raw]
        if len(kinds) != 1:
            raise self.fail(key, f"give exactly one of {', '.join(SOURCE_KINDS)}")
        kind = kinds[0]
        limit = raw.get("limit")
        if limit is not None:
            limit = self.integer(f"{key}.limit", limit, minimum=1)
        # Data paths are checked when the data is read, so a config for another machine still
        # loads and validates here.
        image_root = raw.get("image_root")
        if image_root is not None:
            image_root = self.file_path(f"{key}.image_root", image_root)
        where = f"{self.path}: {key}"
        if kind == "records":
            path = self.file_path(f"{key}.records", raw["records"])
            return Source("records", path, image_root, limit, where)
        if kind == "dataset":
            from tatar.datasets import DATASETS
            from tatar.scales import dataset_key

            name = raw["dataset"]
            if not isinstance(name, str) or dataset_key(name) not in DATASETS:
                known = ", ".join(d.name for d in DATASETS.values())
                raise self.fail(f"{key}.dataset", f"unknown data set {name!r}; known: {known}")
            return Source("dataset", name, image_root, limit, where)
        spec = self.mapping(f"{key}.toy", raw["toy"], _config_fields(ToySpec))
        try:
            ToySpec(**spec)
        except (TypeError, ValueError) as exc:
            raise self.fail(f"{key}.toy", str(exc)) from None
        if image_root is not None:
            raise self.fail(f"{key}.image_root", "toy data is written under <run_dir>/toy")
        return Source("toy", spec, None, limit, where)

    def sources(self, key: str, value: Any) -> tuple[Source, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, "expected a non-empty list of sources (records / dataset / toy)")
        return tuple(self.source(f"{key}[{i}]", v) for i, v in enumerate(value))

    def trl_args(
        self, key: str, raw: dict[str, Any], cls, defaults: dict[str, Any], own: set[str]
    ) -> dict[str, Any]:
        known = _config_fields(cls)
        args = copy.deepcopy(defaults)
        for name, value in raw.items():
            if name in own:
                continue
            if name in MANAGED:
                raise self.fail(f"{key}.{name}", f"set by TATAR ({MANAGED[name]})")
            target = CHECKPOINTING_ALIASES.get(name, name)
            if target != name and target in raw:
                raise self.fail(f"{key}.{name}", f"the older name of {target}; give one of them")
            if target not in known:
                raise self.fail(
                    f"{key}.{name}",
                    f"unknown key: not a TATAR key ({', '.join(sorted(own))}) "
                    f"nor a field of trl.{cls.__name__}",
                )
            try:
                args[target] = check_trl_value(cls, target, value)
            except ValueError as exc:
                raise self.fail(f"{key}.{name}", str(exc)) from None
        for name in ("deepspeed", "chat_template_path"):
            if isinstance(args.get(name), str):
                args[name] = str(self.file_path(f"{key}.{name}", args[name], must_exist=True))
        return args


# Ranges of training-argument values that TRL/transformers would accept silently or refuse only
# after the model is built (num_train_epochs: -2 trained nothing and saved an untrained "final").
_POSITIVE = {
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "logging_steps",
    "save_steps",
    "eval_steps",
    "max_completion_length",
    "max_prompt_length",
    "epsilon",
    "temperature",
    "steps_per_generation",
    "generation_batch_size",
}
_NON_NEGATIVE = {
    "beta",
    "weight_decay",
    "warmup_steps",
    "top_k",
    "max_grad_norm",
    "seed",
    "dataloader_num_workers",
    "num_iterations",
}
_UNIT_INTERVAL = {"warmup_ratio", "top_p", "vllm_gpu_memory_utilization"}


def _accepted(annotation: Any) -> list[Any]:
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [t for a in typing.get_args(annotation) for t in _accepted(a)]
    return [annotation]


# Experiment trackers a stage may report to (each an optional extra: pip install -e '.[NAME]'),
# and the module that must be importable for it.
REPORTERS: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
}


def check_report_to(value: Any) -> list[str]:
    """``report_to`` as a list of tracker names (``none`` or empty: no tracker)."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"expected a tracker name or a list of them, got {value!r}")
    names = [n.strip() for n in names if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in REPORTERS]
    if unknown:
        raise ValueError(f"unknown tracker {unknown[0]!r}; known: {', '.join(REPORTERS)} (or none)")
    return list(dict.fromkeys(names))


def missing_reporters(names: list[str]) -> list[str]:
    """The trackers of `names` whose package is not installed."""
    import importlib.util

    return [n for n in names if not any(importlib.util.find_spec(m) for m in REPORTERS[n])]


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """TRL-style training-argument overrides from the command line.

    ``--learning_rate 1e-5``, ``--learning_rate=1e-5`` and, for a true boolean, a bare ``--bf16``;
    values are read as YAML scalars (``false``, ``8``, ``[tensorboard]``). Dashes in a name are
    accepted for underscores (``--learning-rate``). A field given twice is a ValueError.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}: overrides are written --FIELD VALUE")
        name, eq, text = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                text = args[i + 1]
                i += 1
            else:
                text = "true"
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError:
            value = text
        if name in out:
            # Silently keeping the last would train with a value the user may not have meant.
            raise ValueError(
                f"--{name} is given twice ({out[name]!r}, then {value!r}); give it once"
            )
        out[name] = value
        i += 1
    return out


def check_trl_value(cls, name: str, value: Any) -> Any:
    """`value` checked against the type and range of the field `name` of the TRL config class
    `cls` (a number given as a string, as YAML reads ``1e-5``, is converted); returns the value
    to use. Raises ValueError with the problem (the caller adds the file and key)."""
    import enum
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an unresolvable annotation elsewhere: no type check, ranges still apply
        hints = {}
    kinds = _accepted(hints[name]) if name in hints else []
    if name == "report_to":
        return check_report_to(value if value is not None else [])
    if value is None:
        if kinds and type(None) not in kinds:
            raise ValueError("expected a value, got null")
        return value
    plain = [k for k in kinds if k in (bool, int, float, str)]
    enums = [k for k in kinds if isinstance(k, type) and issubclass(k, enum.Enum)]
    if enums and isinstance(value, str):
        # transformers turns these strings into the enum and refuses any other
        choices = [e.value for k in enums for e in k]
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if kinds and len(plain) + len(enums) == len([k for k in kinds if k is not type(None)]):
        ok = (
            (bool in plain and isinstance(value, bool))
            or (int in plain and isinstance(value, int) and not isinstance(value, bool))
            or (float in plain and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (str in plain and isinstance(value, str))
        )
        if not ok and float in plain and isinstance(value, str):
            try:
                value, ok = float(value), True
            except ValueError:
                ok = False
        if not ok and int in plain and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        if not ok:
            wanted = " or ".join(
                dict.fromkeys(
                    {bool: "true/false", int: "an integer", float: "a number", str: "a string"}[k]
                    for k in plain
                )
            )
            raise ValueError(f"expected {wanted or 'another type'}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        if name in _POSITIVE and value <= 0:
            raise ValueError(f"must be positive, got {value!r}")
        if name in _NON_NEGATIVE and value < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        if name in _UNIT_INTERVAL and not 0 <= value <= 1:
            raise ValueError(f"expected a number in [0, 1], got {value!r}")
        if name == "max_steps" and value != -1 and value < 1:
            raise ValueError(f"expected a positive integer (or -1: use the epochs), got {value!r}")
    return value


def _dropout(r: _Reader, raw: Any) -> dict[str, float]:
    rates = {"iqa": 0.8, "iaa": 0.0}
    given = r.mapping("sft.thought_dropout", raw, set(TASKS))
    for task, value in given.items():
        rates[task] = r.probability(f"sft.thought_dropout.{task}", value)
    return rates


def _check_batches(r: _Reader, sft: dict, grpo: dict, num_processes: int) -> None:
    g = grpo.get("num_generations", 8)
    r.integer("grpo.num_generations", g, minimum=2)
    per_device = grpo.get("per_device_train_batch_size", 8)
    steps = grpo.get("steps_per_generation") or grpo.get("gradient_accumulation_steps", 1)
    batch = grpo.get("generation_batch_size") or per_device * num_processes * steps
    if batch % g:
        raise r.fail(
            "grpo.num_generations",
            f"the generation batch ({batch} completions = per_device_train_batch_size {per_device} "
            f"x {num_processes} process(es) x {steps} steps per generation) must be divisible by "
            f"num_generations ({g}); each prompt needs all its {g} completions in one batch",
        )
    for key, value in (("temperature", grpo.get("temperature")), ("top_p", grpo.get("top_p"))):
        if not isinstance(value, (int, float)) or value <= 0:
            raise r.fail(f"grpo.{key}", f"must be positive, got {value!r}")
    if isinstance(grpo.get("top_k"), bool) or not isinstance(grpo.get("top_k"), int):
        raise r.fail("grpo.top_k", f"expected an integer (0 = off), got {grpo.get('top_k')!r}")
    if sft.get("dataloader_persistent_workers"):
        raise r.fail(
            "sft.dataloader_persistent_workers",
            "not supported: thought dropout is redrawn every epoch, persistent workers would keep "
            "the first epoch's draw",
        )


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config (see the module docstring for the layout)."""
    from peft import LoraConfig
    from trl import GRPOConfig, SFTConfig

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    from tatar.textio import read_yaml

    raw = read_yaml(path)
    r = _Reader(path)
    raw = r.mapping("", raw, TOP_KEYS)
    if "model" not in raw:
        raise r.fail("model", "missing (give model.path: a folder, a hub id or 'tiny')")

    run_dir = r.file_path("run_dir", raw.get("run_dir", f"../runs/{path.stem}"))

    m = r.mapping("model", raw["model"], MODEL_KEYS)
    model_path = m.get("path")
    if not isinstance(model_path, str) or not model_path.strip():
        raise r.fail("model.path", "expected a folder, a hub id or 'tiny'")
    if model_path != "tiny":
        local = Path(model_path).expanduser()
        local = local if local.is_absolute() else path.parent / local
        if local.exists() or model_path.startswith((".", "/", "~")):
            if not (local / "config.json").is_file():
                raise r.fail(
                    "model.path", f"not a model folder (no config.json): {local.resolve()}"
                )
            model_path = str(local.resolve())
    tiny = r.mapping("model.tiny", m.get("tiny"))
    if tiny:
        from tatar.tiny_model import TinyModelSpec

        if model_path != "tiny":
            raise r.fail("model.tiny", "only with model.path: tiny")
        bad = sorted(set(tiny) - _config_fields(TinyModelSpec))
        if bad:
            raise r.fail(f"model.tiny.{bad[0]}", "not a TinyModelSpec field")
    freeze = m.get("freeze_vision_tower", False)
    if not isinstance(freeze, bool):
        raise r.fail("model.freeze_vision_tower", f"expected true or false, got {freeze!r}")
    model = ModelConfig(
        model_path, tiny, r.mapping("model.init_kwargs", m.get("init_kwargs")), freeze
    )

    given = r.mapping("processor", raw.get("processor"), PROCESSOR_KEYS)
    processor = dict(SPEC_PIXELS)
    for key, value in given.items():
        processor[key] = r.integer(f"processor.{key}", value, minimum=1)
    if processor.get("min_pixels", 0) > processor.get("max_pixels", math.inf):
        raise r.fail("processor.min_pixels", "exceeds processor.max_pixels")

    d = r.mapping("data", raw.get("data"), DATA_KEYS)
    if "train" not in d:
        raise r.fail("data.train", "missing: list the training data sources")
    train = r.sources("data.train", d["train"])
    grpo_sources = r.sources("data.grpo", d["grpo"]) if d.get("grpo") is not None else train
    fraction = d.get("iqa_fraction")
    if fraction is not None:
        fraction = r.probability("data.iqa_fraction", fraction)
        if fraction in (0.0, 1.0):
            raise r.fail("data.iqa_fraction", "must lie strictly between 0 and 1 (or be null)")
    data = DataConfig(train, grpo_sources, fraction, r.integer("data.seed", d.get("seed", 0)))

    s = r.mapping("sft", raw.get("sft"))
    sft = SFTStage(
        _dropout(r, s.get("thought_dropout")),
        r.trl_args("sft", s, SFTConfig, SFT_DEFAULTS, SFT_KEYS),
    )

    g = r.mapping("grpo", raw.get("grpo"))
    init = g.get("init", "sft")
    if init not in ("sft", "base"):
        init = str(r.file_path("grpo.init", init, must_exist=True))
    try:
        rewards = RewardSettings.from_dict(r.mapping("grpo.rewards", g.get("rewards")))
    except (TypeError, ValueError) as exc:
        raise r.fail("grpo.rewards", str(exc)) from None
    grpo = GRPOStage(init, rewards, r.trl_args("grpo", g, GRPOConfig, GRPO_DEFAULTS, GRPO_KEYS))

    peft = raw.get("peft")
    if peft is not None:
        peft = r.mapping("peft", peft, _config_fields(LoraConfig))
        try:
            LoraConfig(**peft)
        except (TypeError, ValueError) as exc:
            raise r.fail("peft", str(exc)) from None

    la = r.mapping("launch", raw.get("launch"), LAUNCH_KEYS)
    accelerate_config = la.get("accelerate_config")
    if accelerate_config is not None:
        accelerate_config = r.file_path(
            "launch.accelerate_config", accelerate_config, must_exist=True
        )
    cpu_threads = la.get("cpu_threads")
    if cpu_threads is not None:
        cpu_threads = r.integer("launch.cpu_threads", cpu_threads, minimum=1)
    launch = LaunchConfig(
        r.integer("launch.num_processes", la.get("num_processes", 1), minimum=1),
        accelerate_config,
        cpu_threads,
    )
    _check_batches(r, sft.args, grpo.args, launch.num_processes)
    return TrainConfig(
        path, run_dir, model, processor, data, sft, grpo, peft, launch, copy.deepcopy(raw)
    )
