"""Chat templates that replace a tokenizer's own (`model.chat_template`): a .jinja file or a bundled name."""

from __future__ import annotations

from pathlib import Path

from gatetune.errors import ConfigError

BUNDLED_TEMPLATES = Path(__file__).resolve().parent / "chat_templates"


def bundled_templates() -> list[str]:
    return sorted(p.stem for p in BUNDLED_TEMPLATES.glob("*.jinja"))


def read_chat_template(name: str) -> str:
    """The text of `model.chat_template`: a .jinja file, or the name of one bundled in gatetune/chat_templates/."""
    path = Path(name).expanduser()
    if not path.is_file() and "/" not in name and not name.endswith(".jinja"):
        path = BUNDLED_TEMPLATES / f"{name}.jinja"
    if not path.is_file():
        raise ConfigError("model.chat_template", f"no file {name!r} and no bundled template of that name "
                          f"(bundled: {', '.join(bundled_templates())}; or give the path of a .jinja file)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("model.chat_template", f"cannot read {path}: {exc}") from None
    if not text.strip():
        raise ConfigError("model.chat_template", f"{path} is empty")
    _check_syntax(text, path)
    return text


def _check_syntax(text: str, path: Path) -> None:
    """Compile the template as transformers does (its jinja environment, `{% generation %}` included)."""
    try:
        from jinja2 import TemplateSyntaxError
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:  # a transformers without this helper: the first rendering reports it instead
        return
    try:
        _compile_jinja_template(text)
    except TemplateSyntaxError as exc:
        raise ConfigError("model.chat_template", f"{path}:{exc.lineno}: the template does not parse: "
                          f"{exc.message}") from None
