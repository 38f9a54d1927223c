"""The structured config schema. Each dataclass is one node of `gatetune/conf/train.yaml`.

Registered in Hydra's ConfigStore as `train_schema`, which `gatetune/conf/train.yaml` lists first
in its defaults, so every YAML file and override is type-checked against it and an
unknown key fails with its name. `validate` holds the rules that span several fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from data_checks.config import ChecksConfig
from gatetune.engine_gates import engine_problems
from gatetune.errors import ConfigError
from gatetune.evaluation.config import EvalConfig, eval_problems
from gatetune.objectives import Objective, ObjectiveSpec, objective_spec
from gatetune.resume_check import ResumeConfig
from gatetune.templates import read_chat_template


class Adaptation(str, Enum):
    lora = "lora"  # PEFT LoRA on a full-precision base
    qlora = "qlora"  # PEFT LoRA on a 4-bit NF4 base (bitsandbytes)
    full = "full"  # every weight trains


class DataFormat(str, Enum):
    auto = "auto"
    chat = "chat"
    alpaca = "alpaca"
    prompt_completion = "prompt_completion"
    preference = "preference"
    prompt = "prompt"
    text = "text"


class TaskType(str, Enum):
    """What the data asks of the model; picks the default LoRA rank."""

    generation = "generation"
    classification = "classification"
    extraction = "extraction"


class TrainOn(str, Enum):
    """Which tokens carry the loss: the answers only (assistant turns / completions) or all of them."""

    answers = "answers"
    all = "all"


class Precision(str, Enum):
    auto = "auto"  # bf16 on a GPU that supports it, else fp32
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Packing(str, Enum):
    """How examples share a batch (gatetune/packing.py)."""

    none = "none"  # padded to the longest of the batch (TRL's default)
    padding_free = "padding_free"  # concatenated, position_ids restart per example, no padding
    bin_pack = "bin_pack"  # first-fit-decreasing bins of training.tokens_per_batch tokens, concatenated


class LoggerKind(str, Enum):
    wandb = "wandb"
    tensorboard = "tensorboard"
    none = "none"


@dataclass
class RecipeConfig:
    """What to train: the objective and how the weights are adapted."""

    name: str = MISSING
    objective: Objective = Objective.sft
    adaptation: Adaptation = Adaptation.lora
    deepspeed: Optional[str] = None  # a JSON in gatetune/conf/deepspeed/ by name (zero2, zero3, ...) or a path


@dataclass
class ModelConfig:
    """The base model: a hub ID or a local directory holding a causal LM and its tokenizer."""

    name: str = MISSING
    path: str = MISSING
    build: Optional[str] = None  # "tiny_llama": build the embedded model at `path` if it is not there
    revision: Optional[str] = None
    trust_remote_code: bool = False
    attn_implementation: Optional[str] = None
    # A .jinja file, or a bundled name (gatetune/chat_templates/), that replaces the tokenizer's chat template;
    # the exported tokenizer carries it. null: the tokenizer's own.
    chat_template: Optional[str] = None
    context_length: Optional[int] = None  # the model's context window; data.max_length may not exceed it


@dataclass
class DataConfig:
    name: str = MISSING
    path: str = MISSING
    eval_path: Optional[str] = None
    eval_split: str = "validation"  # split read from eval_path when it is a saved or hub dataset
    format: DataFormat = DataFormat.auto
    split: str = "train"
    task_type: TaskType = TaskType.generation
    max_length: int = 1024
    eval_fraction: float = 0.1
    train_on: TrainOn = TrainOn.answers
    max_examples: Optional[int] = None
    # Keyword arguments for every chat-template rendering (gates, training, export), e.g. {enable_thinking: false}
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    # SFT rows are cached in $GATETUNE_CACHE/tokenized/ by the hash of the data, tokenizer, template and settings
    cache_tokenized: bool = True
    tokenize_processes: Optional[int] = None  # null: one per core (at most 8; one below 10,000 records)


@dataclass
class LoraConfig:
    """PEFT LoRA settings; `rank`/`alpha` left null take the seed defaults (see `resolved_rank`)."""

    rank: Optional[int] = None
    alpha: Optional[int] = None
    dropout: float = 0.05
    target_modules: Any = "all-linear"
    # Parameters (not modules) to adapt, e.g. GPT-OSS's experts ["mlp.experts.gate_up_proj", ...] (PEFT's
    # target_parameters; vLLM loads them for GPT-OSS). null: none.
    target_parameters: Optional[list[str]] = None
    use_rslora: bool = False


@dataclass
class TrainingConfig:
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    effective_batch_size: int = 16
    max_per_device_batch_size: int = 8
    eval_every_steps: int = 200
    early_stopping_patience: int = 3
    early_stopping_threshold: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    gradient_checkpointing: bool = False
    precision: Precision = Precision.auto
    save_total_limit: int = 2
    # none | padding_free | bin_pack; null: none with group_by_length, bin_pack with tokens_per_batch, else the
    # objective's default (SFT: padding_free, DPO/GRPO: none)
    packing: Optional[Packing] = None
    group_by_length: bool = False  # padded batches (packing=none) of similar length: less padding
    tokens_per_batch: Optional[int] = None  # bin_pack's budget per batch; null: per-device batch x mean length
    liger: bool = False  # Liger's Triton kernels (CUDA GPU, supported architectures; pip install liger-kernel)


@dataclass
class DpoConfig:
    """TRL DPOConfig keys the DPO recipe exposes (the rest keep TRL's defaults)."""

    beta: float = 0.1
    loss_type: str = "sigmoid"


@dataclass
class GrpoConfig:
    """TRL GRPOConfig keys the GRPO recipe exposes, and the rewards (files in gatetune/conf/reward/) it optimises."""

    rewards: list[str] = field(default_factory=list)
    reward_weights: Optional[list[float]] = None
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    beta: float = 0.0  # KL penalty; 0 (TRL's default) needs no reference model
    use_vllm: bool = False  # generate with vLLM (TRL's vllm_mode colocate); needs vllm installed
    vllm_mode: str = "colocate"
    # The share of records that no reward can score (every reward None: TRL trains on nothing there) that
    # is tolerated; more is a data error before any model loads (gatetune/reward_checks.py).
    max_unscored_fraction: float = 0.05


@dataclass
class LoggerConfig:
    kind: LoggerKind = LoggerKind.wandb
    project: str = "gatetune"
    mode: str = "offline"  # wandb: offline (default), online or disabled


@dataclass
class ExportConfig:
    merge: bool = False
    adapter_name: Optional[str] = None  # the name vLLM serves the adapter under; default: the run's recipe


@dataclass
class SlurmConfig:
    """How `scripts/submit.py` renders gatetune/slurm/train.sbatch (train.py itself does not read it)."""

    nodes: int = 1
    gpus_per_node: int = 8  # 0: CPU processes talking over gloo
    processes_per_node: Optional[int] = None  # default: one per GPU (1 when gpus_per_node is 0)
    cpus_per_task: int = 64  # CPUs for everything on a node: one task per node runs all its processes
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    time: Optional[str] = None  # the job's time limit, e.g. "24:00:00"; SIGUSR1 comes signal_seconds before it
    mem: Optional[str] = None  # per node, e.g. "0" (all of it) or "500G"
    exclusive: bool = False
    job_name: Optional[str] = None  # default: gatetune-<recipe>
    signal_seconds: int = 120  # --signal=B:USR1@<this>: time to checkpoint before the limit
    directives: list[str] = field(default_factory=list)  # more #SBATCH options, e.g. ["--constraint=h100"]
    setup: list[str] = field(default_factory=list)  # shell lines run first: module load, source venv/bin/activate
    env: dict[str, str] = field(default_factory=dict)  # exported in the job: NCCL_SOCKET_IFNAME, NCCL_DEBUG, ...
    python: Optional[str] = None  # the interpreter on the nodes; default: the one running submit.py


@dataclass
class TrainConfig:
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    dpo: DpoConfig = field(default_factory=DpoConfig)
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    # Any field of the objective's TRL config (SFTConfig / DPOConfig / GRPOConfig), merged last over what the
    # other nodes set: +trl.optim=paged_adamw_8bit, +trl.neftune_noise_alpha=5, +trl.rpo_alpha=1.0, ...
    trl: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    resume: ResumeConfig = field(default_factory=ResumeConfig)


SAMPLE_DATA_DIR = Path(__file__).resolve().parent / "sample_data"


def register_schema() -> None:
    """Register the schema and `${sample_data:FILE}`, the path of a bundled sample file."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    if not OmegaConf.has_resolver("sample_data"):
        OmegaConf.register_new_resolver("sample_data", lambda name: str(SAMPLE_DATA_DIR / name))


# Seed defaults: small ranks suffice for classification/extraction, generation gets more capacity.
DEFAULT_RANK = {TaskType.generation: 64, TaskType.classification: 16, TaskType.extraction: 16}


def resolved_rank(lora: LoraConfig, task_type: TaskType) -> int:
    return lora.rank if lora.rank is not None else DEFAULT_RANK[task_type]


def resolved_alpha(lora: LoraConfig, task_type: TaskType) -> int:
    return lora.alpha if lora.alpha is not None else 2 * resolved_rank(lora, task_type)


def typed_config(cfg: DictConfig | TrainConfig) -> TrainConfig:
    """The composed config as the schema's dataclasses, converted once: enums parsed, interpolations
    resolved, `checks` a data_checks ChecksConfig; then checked (`validate`). Every step of a run reads
    its node of the result."""
    if not isinstance(cfg, TrainConfig):
        _check_against_schema(cfg)
        try:
            cfg = OmegaConf.to_object(cfg)
        except OmegaConfBaseException as exc:  # e.g. an interpolation that does not resolve
            key = getattr(exc, "full_key", None) or "config"
            raise ConfigError(key, str(exc).splitlines()[0]) from None
    validate(cfg)
    return cfg


def resolved_packing(config: TrainConfig) -> str:
    """`training.packing`; when it is null, what the other keys ask for (group_by_length: padded batches,
    tokens_per_batch: bin_pack), else the objective's default."""
    t = config.training
    if t.packing is not None:
        return t.packing.value
    if t.group_by_length:
        return "none"
    if t.tokens_per_batch is not None:
        return "bin_pack"
    return objective_spec(config.recipe.objective).packings[0]


def _check_packing(config: TrainConfig, spec: ObjectiveSpec) -> None:
    t, mode = config.training, resolved_packing(config)
    if mode not in spec.packings:
        raise ConfigError("training.packing", f"objective {spec.objective.value} trains with packing "
                          f"{' or '.join(spec.packings)}, not {mode}{spec.packing_note}")
    if t.group_by_length and mode != "none":
        raise ConfigError("training.group_by_length", f"applies to padded batches (training.packing=none); "
                          f"packing={mode} has no padding to save")
    if t.tokens_per_batch is not None:
        if mode != "bin_pack":
            raise ConfigError("training.tokens_per_batch", f"is the budget of training.packing=bin_pack "
                              f"(packing is {mode}); set training.packing=bin_pack")
        if t.tokens_per_batch < config.data.max_length:
            raise ConfigError("training.tokens_per_batch", f"{t.tokens_per_batch} is below data.max_length="
                              f"{config.data.max_length}: the longest example would fit no batch")


def validate(config: TrainConfig) -> None:
    """Cross-field rules, checked before any data or model is loaded. Raise ConfigError on the first."""
    t, d = config.training, config.data
    positive = {"training.effective_batch_size": t.effective_batch_size,
                "training.max_per_device_batch_size": t.max_per_device_batch_size,
                "training.eval_every_steps": t.eval_every_steps,
                "training.early_stopping_patience": t.early_stopping_patience,
                "training.logging_steps": t.logging_steps, "data.max_length": d.max_length}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(key, f"must be at least 1, got {value}")
    if t.learning_rate < 0:
        raise ConfigError("training.learning_rate", f"must not be negative, got {t.learning_rate}")
    if t.epochs <= 0 and t.max_steps <= 0:
        raise ConfigError("training.epochs", "must be positive (or set training.max_steps)")
    if d.eval_path is None and not 0.1 <= d.eval_fraction <= 0.5:
        raise ConfigError("data.eval_fraction",
                          f"must be between 0.1 and 0.5 when no data.eval_path is given, got {d.eval_fraction}")
    if config.model.context_length is not None and d.max_length > config.model.context_length:
        raise ConfigError("data.max_length", f"{d.max_length} is longer than the context of {config.model.name} "
                          f"(model.context_length={config.model.context_length})")
    if config.model.chat_template:
        read_chat_template(config.model.chat_template)  # a missing or unreadable file fails here, naming the key
    if d.tokenize_processes is not None and d.tokenize_processes < 1:
        raise ConfigError("data.tokenize_processes", f"must be at least 1, got {d.tokenize_processes}")
    if d.max_examples is not None and d.max_examples < 10:
        raise ConfigError("data.max_examples", f"must be at least 10, got {d.max_examples}")
    if t.save_total_limit < 2:
        raise ConfigError("training.save_total_limit", f"must be at least 2 (the best checkpoint and the latest, "
                          f"to resume from), got {t.save_total_limit}")
    lora = config.lora
    if lora.rank is not None and lora.rank < 1:
        raise ConfigError("lora.rank", f"must be at least 1, got {lora.rank}")
    if lora.alpha is not None and lora.alpha <= 0:
        raise ConfigError("lora.alpha", f"must be positive, got {lora.alpha}")
    if not 0 <= lora.dropout < 1:
        raise ConfigError("lora.dropout", f"must be in [0, 1), got {lora.dropout}")
    adaptation, spec = config.recipe.adaptation, objective_spec(config.recipe.objective)
    if config.export.merge and adaptation is Adaptation.full:
        raise ConfigError("export.merge", "a full fine-tune has no adapter to merge; it exports a full model anyway")
    if adaptation is Adaptation.qlora and config.recipe.deepspeed:
        raise ConfigError("recipe.deepspeed", "QLoRA trains on one device; a 4-bit base is not sharded with DeepSpeed "
                          "here (use recipe=lora or recipe=full_zero3 to shard)")
    spec.check(config)
    _check_packing(config, spec)
    if d.format is not DataFormat.auto:
        check_format_fits(config.recipe, d.format.value)
    if config.logger.kind is LoggerKind.wandb and config.logger.mode not in ("offline", "online", "disabled"):
        raise ConfigError("logger.mode", f"must be offline, online or disabled, got {config.logger.mode!r}")
    if config.trl:
        check_trl_keys(spec, list(config.trl))
    problems = config.checks.problems() + eval_problems(config.eval) + engine_problems(config.checks, d)
    if problems:
        key, problem = problems[0].split(": ", 1)
        raise ConfigError(key, problem)


def _check_against_schema(cfg: DictConfig) -> None:
    """Keys appended with `+key=value` escape Hydra's struct check; the schema still rejects them."""
    try:
        # A plain copy: Hydra leaves appended nodes unflagged, and the merge would inherit that.
        OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.to_container(cfg, resolve=False))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(key, str(exc).splitlines()[0]) from None


def check_trl_keys(spec: ObjectiveSpec, keys: list[str]) -> None:
    """Every `trl.KEY` is a field of the objective's TRL config class, or ConfigError naming it."""
    import dataclasses
    import difflib

    config_cls, _ = spec.trl_classes()
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for key in keys:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"trl.{key}", f"not a field of TRL's {config_cls.__name__}{hint}")


def check_format_fits(recipe: RecipeConfig, fmt: str) -> None:
    """The data format must be one the recipe's objective trains on."""
    spec = objective_spec(recipe.objective)
    if fmt not in spec.formats:
        raise ConfigError("data.format", f"recipe {recipe.name!r} (objective {spec.objective.value}) trains on "
                          f"{', '.join(spec.formats)} data, but the data is {fmt!r}")
