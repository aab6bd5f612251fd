"""The template environment of the web interface: HTML and Jinja templates, escaped by default."""

from jinja2 import Environment, FileSystemLoader


def make_environment(template_dir):
    env = Environment(
        loader=FileSystemLoader(template_dir),
        trim_blocks=True,
    )
    env.globals["product"] = "Firmware Analysis"
    return env
