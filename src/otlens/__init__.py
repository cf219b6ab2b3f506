"""otlens: transformers through optimal transport.

The library behind the otlens book. Data flows one way: models + text → activations →
transport → tidy results → figures. Plotting (``otlens.plots``), the notebook runner
(``otlens.runner``) and the CLI are not imported here, to keep ``import otlens`` light.
"""

from .activations import Activations, CorruptCacheWarning, extract_activations
from .data import available_corpora, corpus_info, sample_texts
from .depth import (
    PROFILE_METHODS,
    DepthStudy,
    ProfileMethod,
    adjacent_profile,
    depth_study,
    solver_accuracy,
    entropy_profile,
    get_method,
    pairwise_layer_ot,
    profile_shape,
    shape_table,
)
from .entropy import dataset_entropy, norm_entropy, prompt_entropy, renyi_entropy
from .exceptions import ConvergenceWarning
from .hot import HOTAlignment, PairStudy, hot_align, hot_scores, pair_study, reconstruct, reconstruction_scores
from .models import LoadedModel, MissingModelPackageError, ModelInfo, MODELS, list_models, load_model, untrained
from .results import RESULT_COLUMNS, StudyResult, load_results, save_results
from .ot import FRLCResult, HiRefResult, OTResult, exact_ot, frlc, hiref, sinkhorn, sinkhorn_divergence, solve
from .information import binned_mi, discrete_mi, information_plane, probe_mi
from .training import TrainConfig, TrainingRun, train_tiny_gpt
from .reproduction import describe_reproduction, reproduction_table
from .verdicts import Verdict
from .claims import describe_chapter, judge

__version__ = "0.1.0"

__all__ = [
    "Activations", "CorruptCacheWarning", "extract_activations",
    "available_corpora", "corpus_info", "sample_texts",
    "PROFILE_METHODS", "DepthStudy", "ProfileMethod", "adjacent_profile", "depth_study", "solver_accuracy", "entropy_profile", "get_method",
    "pairwise_layer_ot", "profile_shape", "shape_table",
    "dataset_entropy", "norm_entropy", "prompt_entropy", "renyi_entropy",
    "ConvergenceWarning",
    "HOTAlignment", "PairStudy", "hot_align", "hot_scores", "pair_study", "reconstruct", "reconstruction_scores",
    "LoadedModel", "MissingModelPackageError", "ModelInfo", "MODELS", "list_models", "load_model", "untrained",
    "RESULT_COLUMNS", "StudyResult", "load_results", "save_results",
    "OTResult", "HiRefResult", "FRLCResult", "exact_ot", "sinkhorn", "sinkhorn_divergence", "frlc", "hiref", "solve",
    "binned_mi", "discrete_mi", "information_plane", "probe_mi", "TrainConfig", "TrainingRun", "train_tiny_gpt",
    "describe_reproduction", "reproduction_table", "Verdict", "describe_chapter", "judge",
]
