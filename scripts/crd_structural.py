"""Checks that CRD schemas are structural, as the Kubernetes API server requires of apiextensions/v1.

    crd_structural.py CRD.yaml...

kubernetes-validate checks a CRD against the CustomResourceDefinition type, but the API server also
rejects schemas that are not structural. This implements the rules of the Kubernetes documentation
("Specifying a structural schema") plus the apiextensions validation rules a generator can break:
  1. every node has a non-empty `type`, except under x-kubernetes-int-or-string or
     x-kubernetes-preserve-unknown-fields: true;
  2. fields and items named inside allOf/anyOf/oneOf/not are also specified outside them;
  3. inside those junctors: no description, type, default, additionalProperties, nullable
     (except the int-or-string pattern);
  4. `metadata` at the root restricts only name and generateName;
  5. no $ref, no definitions, `items` is one schema, properties and additionalProperties are
     not both set, x-kubernetes-preserve-unknown-fields is only `true`.
Exit status 1 with one line per violation: FILE version PATH: message.
"""

import sys

import yaml

JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
FORBIDDEN_IN_JUNCTOR = ("description", "type", "default", "additionalProperties", "nullable")
errors = []


def err(where, path, message):
    errors.append(f"{where} {path or '<root>'}: {message}")


def is_int_or_string_pattern(junctor_items):
    types = sorted(s.get("type", "") for s in junctor_items if isinstance(s, dict))
    return types == ["integer", "string"] and all(set(s) == {"type"} for s in junctor_items)


def junctor_schemas(node):
    for j in JUNCTORS:
        if j not in node:
            continue
        value = node[j]
        yield j, value if isinstance(value, list) else [value]


def check_junctor_node(where, path, node, int_or_string, core):
    """A schema inside a logical junctor: only value validations, on fields the core specifies."""
    for key in FORBIDDEN_IN_JUNCTOR:
        if key in node and not (int_or_string and key == "type"):
            err(where, path, f"`{key}` inside a logical junctor")
    for key in node:
        if key.startswith("x-kubernetes-"):
            err(where, path, f"`{key}` inside a logical junctor")
    for name, sub in node.get("properties", {}).items():
        if name not in core.get("properties", {}):
            err(where, f"{path}.{name}", "field named only inside a logical junctor")
        elif isinstance(sub, dict):
            check_junctor_node(where, f"{path}.{name}", sub, False, core["properties"][name])
    if "items" in node:
        if "items" not in core:
            err(where, f"{path}[]", "items specified only inside a logical junctor")
        elif isinstance(node["items"], dict):
            check_junctor_node(where, f"{path}[]", node["items"], False, core["items"])
    for _, subs in junctor_schemas(node):
        for sub in subs:
            check_junctor_node(where, path, sub, False, core)


def check_node(where, path, node, root=False):
    if not isinstance(node, dict):
        err(where, path, "schema is not an object")
        return
    for key in ("$ref", "definitions", "$defs"):
        if key in node:
            err(where, path, f"`{key}` is not allowed in a CRD schema")
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if preserve is not None and preserve is not True:
        err(where, path, "x-kubernetes-preserve-unknown-fields must be true or absent")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    if not node.get("type") and not int_or_string and preserve is not True:
        err(where, path, "no type (a structural schema types every node)")
    if root and node.get("type") != "object":
        err(where, path, "the root must be of type object")
    if "properties" in node and "additionalProperties" in node:
        err(where, path, "properties and additionalProperties are mutually exclusive")
    if isinstance(node.get("items"), list):
        err(where, path, "items must be a single schema, not a list")
    for j, subs in junctor_schemas(node):
        ios = int_or_string and j == "anyOf" and is_int_or_string_pattern(subs)
        for sub in subs:
            if isinstance(sub, dict):
                check_junctor_node(where, path, sub, ios, node)
    for name, sub in node.get("properties", {}).items():
        check_node(where, f"{path}.{name}", sub)
    if isinstance(node.get("additionalProperties"), dict):
        check_node(where, f"{path}.*", node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        check_node(where, f"{path}[]", node["items"])
    if root and "metadata" in node.get("properties", {}):
        meta = node["properties"]["metadata"]
        allowed = {"type", "properties"}
        if set(meta) - allowed or set(meta.get("properties", {})) - {"name", "generateName"}:
            err(where, ".metadata", "only restrictions of metadata.name and metadata.generateName are allowed")


def main():
    if len(sys.argv) < 2:
        print("usage: crd_structural.py CRD.yaml...", file=sys.stderr)
        sys.exit(2)
    count = 0
    for path in sys.argv[1:]:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                for version in doc["spec"]["versions"]:
                    schema = version.get("schema", {}).get("openAPIV3Schema")
                    where = f"{path} {name}/{version['name']}"
                    if schema is None:
                        err(where, "", "no openAPIV3Schema")
                        continue
                    check_node(where, "", schema, root=True)
                    count += 1
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"{count} CRD schema version(s) are structural")


if __name__ == "__main__":
    main()
