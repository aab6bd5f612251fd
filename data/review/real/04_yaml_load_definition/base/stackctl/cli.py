"""`stackctl create DEFINITION`: read a stack definition (YAML), fill in its parameters and create the stack."""

import sys

import yaml


def read_definition(path, parameters):
    with open(path, encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    if not isinstance(definition, dict):
        raise SystemExit(f"{path}: the definition must be a mapping")
    for key, value in parameters.items():
        definition.setdefault("Parameters", {})[key] = value
    return definition


def main(argv=None):
    argv = argv or sys.argv[1:]
    definition = read_definition(argv[0], dict(arg.split("=", 1) for arg in argv[1:]))
    print(definition.get("StackName", "unnamed"))
