"""Co-learning helpers by name: the built-in ones, or a user's ``CoLearningHelper`` by its dotted path."""
from __future__ import annotations

import inspect
from typing import Any

from engine.errors import InputError
from engine.plugins import resolve
from model.alignment_variants import ClassAwareAlignment, ProjectedAlignment
from model.attribute_head import AttributeHead
from model.cluster_head import RGBClusterHead, TextClusterHead
from model.fam import FeatureAlignment
from model.frm import FeatureRefinement
from model.helpers import CoLearningHelper, HelperContext
from model.rgb_distill import RGBTeacherDistillation

HELPERS: dict[str, type[CoLearningHelper]] = {
    "fam": FeatureAlignment,
    "frm": FeatureRefinement,
    "attribute_head": AttributeHead,
    "rgb_distill": RGBTeacherDistillation,
    "fam_projected": ProjectedAlignment,
    "fam_class_positives": ClassAwareAlignment,
    "text_clusters": TextClusterHead,
    "rgb_clusters": RGBClusterHead,
}


def helper_class(name: str, key: str) -> type[CoLearningHelper]:
    """The helper class ``name`` (config key ``key`` for errors): registered, or a dotted path."""
    cls = resolve(name, HELPERS, key)
    if not (isinstance(cls, type) and issubclass(cls, CoLearningHelper)):
        raise InputError(f"{key}: {name!r} is not a model.helpers.CoLearningHelper subclass")
    return cls


def build_helper(cls: type[CoLearningHelper], context: HelperContext, args: dict[str, Any]) -> CoLearningHelper:
    """``cls.build(context, **args)``; an argument it does not take is one error line naming the helper."""
    default_build = cls.build.__func__ is CoLearningHelper.build.__func__
    parameters = inspect.signature(cls.__init__ if default_build else cls.build).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = [name for name in parameters if name not in ("self", "cls", "context")]
        unknown = [key for key in args if key not in accepted]
        if unknown:
            raise InputError(f"mmcl.helpers.{context.name}: unknown argument {unknown[0]!r} for {cls.__name__}; "
                             f"accepted: {', '.join(accepted) or 'none'}")
    return cls.build(context, **args)
