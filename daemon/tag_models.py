"""Whether models.dir holds tag models, said out loud: an empty folder otherwise only shows as `tags: []`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from beatwatch.analysis.nets.zoo import ModelFileError, model_files, read_model

FIX = "`make install` or `beatwatch models build` builds them there"


def tags_warning(models_dir: Path, loaded: Sequence[str] | None = None) -> str | None:
    """One line when no track will get tags, else None.

    loaded: the models an analyser actually loaded (a pair can be present and still fail to load); None
    reads the folder's jsons only, for the daemon, whose supervisor never loads a model itself.
    """
    if loaded:
        return None
    if not models_dir.is_dir():
        return f"no tags: models.dir {models_dir} does not exist; {FIX}"
    present, problems = 0, []
    for metadata in model_files(models_dir):
        try:
            read_model(metadata)
            present += 1
        except ModelFileError as exc:
            problems.append(str(exc))
    if present and loaded is None:
        return None
    why = "holds no model that loads" if present else "holds no model (name.pb + name.json)"
    return f"no tags: models.dir {models_dir} {why}" + (f" ({problems[0]})" if problems else "") + f"; {FIX}"
