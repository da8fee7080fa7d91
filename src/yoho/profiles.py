"""Named training profiles: everything that decides cost and quality, in one dataclass.

Add a profile by building a `Profile` (usually `dataclasses.replace` of an existing one) and
passing it to `register_profile`; the CLI and `yoho.pipeline.segment` accept its name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from yoho.choices import DEFAULT_PROFILE
from yoho.losses import LossWeights
from yoho.model.net import ModelConfig
from yoho.postprocess import PostOptions
from yoho.render.composite import RenderOptions

__all__ = [
    "DEFAULT_PROFILE",
    "Phase",
    "Profile",
    "RefineOptions",
    "PROFILES",
    "get_profile",
    "register_profile",
    "profile_names",
]


@dataclass(frozen=True)
class Phase:
    """`epochs` epochs at learning rate `lr` (× lr_gamma after each epoch), fresh Adam.

    `freeze_encoder` freezes the encoder (BatchNorm statistics included) — only when pretrained
    encoder weights were loaded: freezing a randomly initialised encoder would leave it random,
    so from scratch every layer trains in every phase (the learning rates are kept).
    """

    epochs: int
    lr: float
    freeze_encoder: bool = False


@dataclass(frozen=True)
class RefineOptions:
    """One correction round (`yoho.refine`): the trained network goes on for a few steps.

    steps, lr: Adam steps from the previous round's weights (warm start), at this rate.
    original_share: share of each batch that is the original image with every circle so far
        labelled (flipped/jittered views); the rest are composites pasting every circle's patch,
        the corrections included. The original views put the new clicks where they were made.
    freeze_norm: keep BatchNorm statistics as they were (a few batches dominated by one image's
        views would otherwise shift them for the whole map).
    sure_high, sure_low: GrabCut's "sure lesion/normal" thresholds on the network's map in a
        correction round (`PostOptions`; None keeps the profile's). A correction says the map
        is wrong somewhere, so only its most confident pixels stay fixed.
    focus: the mask may change only within this many radii of this round's circles (at least
        a tenth of the ROI's equivalent radius); elsewhere the previous round's mask stays
        (`yoho.postprocess.focus_on_clicks`; needs the previous mask). None: the whole mask
        follows the network. 10 removed the rounds that cost Dice away from the click on the
        development images (mean worst drop per curve −0.037 → −0.003) and raised the Dice
        after 1 and 3 clicks (0.928 → 0.943, 0.951 → 0.965).
    grabcut_iterations: GrabCut's iterations in a round (None keeps the profile's). A round
        starts GrabCut from a map that is already close; 2 instead of 5 gave the same Dice
        after every click on the development images and cut a round's time by 14 % (mean
        6.4 → 5.5 s, max 8.5 → 6.9 s).

    Tuned on EndoTect development images (docs/yoho_evaluation.md, "Corrective clicks"): a
    larger rate (1e-3, 2e-4) moved the whole map at every round and lost Dice on some clicks.
    """

    steps: int = 6
    lr: float = 5e-5
    original_share: float = 0.5
    freeze_norm: bool = True
    sure_high: float | None = 0.95
    sure_low: float | None = 0.05
    focus: float | None = 10.0
    grabcut_iterations: int | None = 2


@dataclass(frozen=True)
class Profile:
    """One way to train and apply the network for one image.

    name, description: shown by `yoho profiles`.
    input_size: side of the square letterboxed network input.
    batch_size, steps_per_epoch, phases, lr_gamma: the schedule (steps = Σ epochs × steps).
    dataset_length: rendered samples (last = original image); None → batch × steps per epoch.
    model, render, loss: network shape, renderer switches, loss weights.
    threshold: on the lesion probability. roi_clip: clip the prediction to the ROI.
    tta_flip: average the prediction over horizontal/vertical flips.
    amp, channels_last: used only where the device supports them (CUDA).
    workers: DataLoader worker processes for rendering on CUDA (0 = in the training process;
        -1 = one per available core but the training process's, at most 16). Samples are
        rendered from their index alone, so the count changes the speed, never the data.
    thread_invariant: on CPU, math whose bits do not depend on the thread count (oneDNN off,
        MKL in strict reproducible mode; `yoho.threads.thread_invariant_math`): the same seed
        gives the same mask on 1 or 16 threads, at about 1.9× the step time here.
    roi_crop: train and predict on the ROI's bounding box grown by this fraction of its larger
        side on each side (`yoho.roi_crop`); None = the whole image (the authors).
    post: post-processing after threshold and ROI clip (`yoho.postprocess`; off by default).
    ema_decay: keep an exponential moving average of the weights (and BatchNorm statistics)
        with this decay and use it for prediction; None = the last weights (the authors).
    average_last: use the plain average of the weights (and BatchNorm statistics) after each
        of the last this-many steps instead of the last weights (stochastic weight averaging
        over the end of the schedule); None = the last weights. Not together with `ema_decay`.
    refine: how a correction round continues training (`RefineOptions`).
    """

    name: str
    description: str
    input_size: int
    batch_size: int
    steps_per_epoch: int
    phases: tuple[Phase, ...]
    lr_gamma: float = 0.96
    dataset_length: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    render: RenderOptions = field(default_factory=RenderOptions)
    loss: LossWeights = field(default_factory=LossWeights)
    threshold: float = 0.5
    roi_clip: bool = True
    tta_flip: bool = False
    amp: bool = True
    channels_last: bool = True
    workers: int = 0
    ema_decay: float | None = None
    average_last: int | None = None
    post: PostOptions = field(default_factory=PostOptions)
    roi_crop: float | None = None
    thread_invariant: bool = False
    refine: RefineOptions = field(default_factory=RefineOptions)

    @property
    def epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def length(self) -> int:
        return self.dataset_length or self.batch_size * self.steps_per_epoch

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = Profile(
    name="paper",
    description=(
        "The published schedule (for a GPU): ResNet-34 edge-enhanced UNet, 256², batch 32, "
        "50 it/epoch over 1600 samples, 20 epochs at 1e-3 (encoder frozen when pretrained) + "
        "10 epochs at 3e-5, Adam, lr ×0.96/epoch; authors' renderer; no ROI clip."
    ),
    input_size=256,
    batch_size=32,
    steps_per_epoch=50,
    phases=(Phase(20, 1e-3, freeze_encoder=True), Phase(10, 3e-5)),
    lr_gamma=0.96,
    dataset_length=1600,
    roi_clip=False,
    # On an H200 with 4 workers the renderer, not the GPU, set the pace (56 ms/step).
    workers=-1,
)

CPU = Profile(
    name="cpu",
    description=(
        "About a minute per image on 2 CPU cores: ResNet-18 edge-enhanced UNet (lighter "
        "decoder with BatchNorm, side heads, attention at 1/4 resolution), 128², batch 8, "
        "100 steps at 2e-3; renderer with flips, colour jitter, rotated triangles and 1 sample "
        "in 8 the original image; flip test-time augmentation; ROI clip."
    ),
    input_size=128,
    batch_size=8,
    steps_per_epoch=20,
    phases=(Phase(5, 2e-3),),
    lr_gamma=0.8,
    dataset_length=1600,
    model=ModelConfig(
        encoder="resnet18",
        decoder_channels=(128, 64, 48, 32),
        head_channels=16,
        side_channels=(16, 16, 32, 64, 128),
        fusion_stride=4,
        decoder_norm=True,
    ),
    render=RenderOptions(rotate_triangles=True, flip=True, colour_jitter=0.1, original_views=200),
    roi_clip=True,
    tta_flip=True,
)

CPU_TUNED = replace(
    CPU,
    name="cpu_tuned",
    description=(
        "The `cpu` network and schedule (about a minute on 2 CPU cores), then the physician's "
        "input used at test time: GrabCut at the original resolution started from the "
        "network's probability (sure lesion > 0.8, sure normal < 0.2 and outside the ROI), "
        "lesion circles forced to lesion, normal circles to normal, only components touching "
        "a lesion circle kept, holes filled. Tuned on EndoTect images outside the evaluation "
        "subset (docs/yoho_evaluation.md)."
    ),
    post=PostOptions(force_circles=True, fill_holes=True, keep_seeded=True, grabcut_refine=True),
)

CPU_CALIBRATED = replace(
    CPU_TUNED,
    name="cpu_calibrated",
    description=(
        "The `cpu` network and schedule (about a minute on 2 CPU cores); its "
        "probability calibrated to the physician's clicks (the lesion circles read 1, the "
        "normal circles and a ring just outside the ROI read 0) before the 0.5 threshold, "
        "so a map of the right shape at a low level is no longer lost; then the `cpu_tuned` "
        "post-processing (GrabCut from the calibrated map, circles forced, seeded components, "
        "holes filled). Tuned on EndoTect images outside the evaluation subset."
    ),
    post=replace(CPU_TUNED.post, calibrate=True),
)

CPU_FUSED = replace(
    CPU_CALIBRATED,
    name="cpu_fused",
    description=(
        "`cpu_calibrated` (the `cpu` network, about a minute on 2 CPU cores, its "
        "map calibrated to the clicks), with the map the post-processing starts from averaged "
        "as ¼ network + ¾ random-walker probability from the same circles, in the first "
        "result and in every correction round. The walker follows the image's edges from "
        "the clicks, the network the lesion's look; tuned on EndoTect images outside the "
        "evaluation subset (docs/yoho_evaluation.md). 75 training steps (5 epochs of 15), "
        "not `cpu`'s 100: the same Dice on the evaluation images in ¾ of the training time."
    ),
    post=replace(CPU_CALIBRATED.post, walker_share=0.75),
    # 75 steps: first result 0.921 with 75 and with 100 on 20 `every4` images, Dice after 1-5
    # clicks within 0.002; 61 s instead of 76 s per image on 2 cores (docs/yoho_evaluation.md).
    steps_per_epoch=15,
)

CPU_GUIDED = replace(
    CPU_FUSED,
    name="cpu_guided",
    description=(
        "The default. The `cpu_fused` network (75 steps, about a minute on 2 CPU cores, its "
        "map calibrated to the clicks); the post-processing starts from the random walker "
        "of the same circles walking on the image *and* the network's map (a fourth channel, "
        "weight 10): the walk stops where the image's colour or the network's map changes, so "
        "the network's view of the lesion bounds a walk the image's edges alone let leak out "
        "of a loose ROI. In the first result and in every correction round; GrabCut's sure "
        "pixels above 0.7 / below 0.3 of that soft map. GrabCut's mask from the clicks alone "
        "is the result when the walk's is over 1.6× its area (three lesion circles or more: "
        "the walk crossed a faint lesion edge) and always with a complement ROI (the walk "
        "floods an ROI drawn over normal tissue). With three lesion circles or more, the "
        "ROI's tissue the network is sure is normal (map below 0.1, beyond three circle radii "
        "from every lesion circle) also seeds the walk as normal: a loose ROI's few normal "
        "circles let the walk flood the normal tissue around the lesion. Tuned on images "
        "outside the evaluation (docs/yoho_evaluation.md)."
    ),
    # weight 10: development images, mean Dice vs the walker on the image alone at the four
    # protocol settings 0.932/0.926, 0.868/0.858, 0.772/0.761, 0.822/0.770 (weight 5: 0.929,
    # 0.907, 0.765, 0.803; the ¼/¾ average of `cpu_fused`: 0.917, 0.869, 0.729, 0.705).
    # GrabCut's sure pixels at 0.7 / 0.3, not 0.8 / 0.2: the guided walker's map is soft (half
    # the ROI lies between 0.2 and 0.8), and the wider band let GrabCut's colour models alone
    # re-decide half a loose ROI. Same development images and settings: 0.933 / 0.885 / 0.784 /
    # 0.857 against 0.932 / 0.868 / 0.772 / 0.822 (0.65: 0.921 / 0.895 / 0.785 / 0.876).
    # leak_ratio 1.6: a guided walk that crossed a faint lesion edge (the mask more than 1.6×
    # GrabCut's from the clicks alone, three lesion circles or more) gives way to GrabCut's mask,
    # and so does every walk in a complement ROI (the 11 development images annotated in the
    # complement protocol: walker 0.432, GrabCut from the clicks 0.768, better on all 11).
    # Chosen on the 11 development images (the 6 EndoTect ones and the 5 Kvasir-SEG ones) with
    # three circles: 1.6 and 1.7 gained most, + 0.018 mean Dice over 22 network runs (fired 3
    # times, GrabCut's mask better all 3), + 0.028 over 33 network-free cases of the walker
    # alone; 1.3-1.5 also fired where the walk was right (docs/yoho_evaluation.md).
    # network_seeds 0.1: same 11 development images, three lesion circles, mean Dice without /
    # with them 0.918 / 0.918 (margin 0.15), 0.886 / 0.889 (0.3), 0.815 / 0.852 (0.5). Seeds
    # nearer the circles (2 radii clear) cost 0.012 at margin 0.15: the network calls parts
    # of the lesion normal; with one circle they cost 0.008 at margin 0.3.
    post=replace(
        CPU_FUSED.post,
        walker_share=1.0,
        walker_guide=10.0,
        sure_high=0.7,
        sure_low=0.3,
        leak_ratio=1.6,
        network_seeds=0.1,
    ),
)

CPU_SHUFFLED = replace(
    CPU_GUIDED,
    name="cpu_shuffled",
    description=(
        "`cpu_guided` (the same post-processing, 75 steps, about a minute on 2 CPU cores) "
        "with half of the training composites drawn on a shuffled background: the image and "
        "its labels cut into tiles an eighth of its shorter side, put back in a random order "
        "and turned. With the image always in place the network learns *where* the labelled "
        "normal tissue lies (outside the ROI) and reads the whole unlabelled ROI as one "
        "plateau; shuffled, it must tell normal from lesion tissue by its look, which is what "
        "the guided walk needs from it in a loose ROI. Tuned on images outside the evaluation "
        "(docs/yoho_evaluation.md)."
    ),
    render=replace(CPU_GUIDED.render, shuffle_background=0.5),
)

CPU_SHUFFLED_EMA = replace(
    CPU_SHUFFLED,
    name="cpu_shuffled_ema",
    description=(
        "`cpu_shuffled` (half of the composites on a shuffled background, the `cpu_guided` "
        "post-processing, 75 steps, about a minute on 2 CPU cores) whose network is the "
        "exponential moving average of its weights (decay 0.95). The shuffled network's map "
        "is less settled than `cpu_guided`'s, and its last steps moved masks by up to 3 % "
        "between 1 and 2 threads; the average steadies them (all 20 `every4` masks within "
        "2 %), but gives back part of the shuffled network's gain in a loose ROI "
        "(docs/yoho_evaluation.md)."
    ),
    # Decay 0.95 (about the last 20 steps, a third of the weight on steps before the last 20):
    # on the four `every4` images whose `cpu_shuffled` masks differed most between 1 and 2
    # threads (mask Dice 0.971-0.980), the lowest agreement became 0.993; decay 0.9 gave
    # 0.976, the plain average of the last 30 steps (`average_last`) 0.969. A stability
    # diagnosis, chosen by the masks' agreement, not by their Dice; the Dice of each was
    # measured on the development images (docs/yoho_evaluation.md): level at margin 0.15 · 3
    # and 0.5 · 1, − 0.024 at margin 0.5 · 3 (the average's younger networks read the ROI as
    # a plateau); on `every4` − 0.018 / − 0.015 against `cpu_shuffled` at margin 0.5.
    ema_decay=0.95,
)

CPU_SHUFFLED_ANNEAL = replace(
    CPU_SHUFFLED,
    name="cpu_shuffled_anneal",
    description=(
        "`cpu_shuffled` (half of the composites on a shuffled background, the `cpu_guided` "
        "post-processing, 75 steps, about a minute on 2 CPU cores) with its learning rate "
        "cooled faster: × 0.6 per epoch instead of × 0.8, so the last 15 steps run at 2.6e-4, "
        "not 8.2e-4. They move the network too little for two thread counts' roundings to "
        "move its masks (1 and 2 threads: all 20 `every4` masks at Dice ≥ 0.993), and, unlike "
        "an average of the weights, no younger network is mixed into the result. Level with "
        "`cpu_guided` on `every4`, not better at every loose setting (docs/yoho_evaluation.md)."
    ),
    # × 0.6: on the four `every4` images whose `cpu_shuffled` masks differed most between 1 and
    # 2 threads (lowest mask Dice 0.971) the lowest became 0.993 (mean 0.997), as with the EMA
    # of `cpu_shuffled_ema`, at no extra time; 120 steps with the mean of the last 40 gave
    # 0.990, 120 steps with the EMA 0.989, both 1.6× the time. A stability diagnosis, chosen by
    # the masks' agreement; the Dice was measured on the development images: margin 0.5 · 3
    # 0.858 and 0.5 · 1 0.848 (`cpu_shuffled` 0.863 / 0.848, `cpu_shuffled_ema` 0.839 / 0.851).
    lr_gamma=0.6,
)

CPU_SHUFFLED_SEEDED = replace(
    CPU_SHUFFLED_ANNEAL,
    name="cpu_shuffled_seeded",
    description=(
        "`cpu_shuffled_anneal` (the shuffled network, its learning rate cooled faster, the "
        "`cpu_guided` post-processing, 75 steps, about a minute on 2 CPU cores) whose network "
        "also seeds a walk from one or two lesion circles: its sure normal tissue (map below "
        "0.1, three circle radii clear of the circles) as normal seeds, as with three circles, "
        "and its sure lesion joined to a circle (map at or above 0.9) as lesion seeds. One small "
        "circle is a weak source for the walk, which then stops short of a tight ROI's lesion "
        "edge and floods a loose ROI's normal tissue; the shuffled network knows the tissues "
        "well enough to bound it from both sides. Three circles: as `cpu_shuffled_anneal`. "
        "Better than that profile with a tight ROI and one circle, a little worse with a loose "
        "one; tuned on images outside the evaluation (docs/yoho_evaluation.md)."
    ),
    # Development images (11, one circle, margin 0.15 / 0.3 / 0.5, the cooled-rate network's
    # maps): 0.801 / 0.852 / 0.846 without; the normal seeds alone 0.797 / 0.847 / 0.868; both
    # at 0.9, 0.837 / 0.874 / 0.841 (0.95: 0.812 / 0.862 / 0.855; 0.85: 0.844 / 0.879 / 0.833).
    # The lesion seeds need the shuffled network: on `cpu_guided`'s maps they cost 0.042 /
    # 0.071 at margin 0.3 / 0.5 (they flood: that network reads the ROI as a plateau).
    # On `every4` (first 20, fresh): 0.877 / 0.881 / 0.840 against `cpu_shuffled_anneal`'s
    # 0.840 / 0.888 / 0.846 (GrabCut 0.893 at margin 0.15); not the default.
    post=replace(CPU_SHUFFLED_ANNEAL.post, network_seeds_min_circles=1, network_lesion_seeds=0.9),
)

TINY = Profile(
    name="tiny",
    description="A few seconds, for tests: a small ResNet-18 net at 64², batch 4, 12 steps.",
    input_size=64,
    batch_size=4,
    steps_per_epoch=6,
    phases=(Phase(2, 3e-3),),
    lr_gamma=0.9,
    dataset_length=64,
    model=ModelConfig(
        encoder="resnet18",
        decoder_channels=(32, 32, 16, 16),
        head_channels=8,
        side_channels=(8, 8, 8, 16, 16),
        fusion_stride=2,
        decoder_norm=True,
    ),
    render=RenderOptions(min_patches=6),
    refine=RefineOptions(steps=4, lr=1e-4),
)

PROFILES: dict[str, Profile] = {}


def check_averaging(profile: Profile) -> None:
    """Refuse a profile that asks for both kinds of weight averaging."""
    if profile.ema_decay and profile.average_last:
        raise ValueError(f"profile {profile.name!r}: ema_decay and average_last exclude each other")


def register_profile(profile: Profile, overwrite: bool = False) -> Profile:
    """Make `profile` available by name."""
    if profile.name in PROFILES and not overwrite:
        raise ValueError(f"profile {profile.name!r} already exists")
    if not profile.phases or profile.total_steps < 1:
        raise ValueError(f"profile {profile.name!r} has no training step")
    check_averaging(profile)
    PROFILES[profile.name] = profile
    return profile


for _profile in (
    PAPER,
    CPU,
    CPU_TUNED,
    CPU_CALIBRATED,
    CPU_FUSED,
    CPU_GUIDED,
    CPU_SHUFFLED,
    CPU_SHUFFLED_EMA,
    CPU_SHUFFLED_ANNEAL,
    CPU_SHUFFLED_SEEDED,
    TINY,
):
    register_profile(_profile)


def profile_names() -> list[str]:
    return sorted(PROFILES)


def get_profile(profile: str | Profile) -> Profile:
    """A profile by name (or the profile itself)."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(
            f"unknown profile {profile!r}; known profiles: {', '.join(profile_names())}"
        ) from None


def with_overrides(profile: Profile, **changes) -> Profile:
    """A copy of `profile` with some fields changed (a thin wrapper of dataclasses.replace)."""
    return replace(profile, **changes)
