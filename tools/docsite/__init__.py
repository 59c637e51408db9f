"""The documentation site's generated parts, where the code is the source.

- :mod:`tools.docsite.connectors`: each built-in connector's facts, template fields, phases and
  IAM actions, read from its class and module;
- :mod:`tools.docsite.parameters`: the stack's parameters, read from template.yaml;
- :mod:`tools.docsite.lifecycle`: the task record's states and transitions, read from
  connectors/store/ (lifecycle.py and the writes mixed into its TaskStore), and the Mermaid
  state diagram that must match them;
- :mod:`tools.docsite.hooks`: the MkDocs hook (mkdocs.yml) that puts them into the pages at build
  time, where a page says ``<!-- generated: ... -->``, and adds the locally fetched mermaid.min.js.

Nothing generated is committed: ``make docs-build`` makes it anew from the code every time, and
``make test`` runs that build with ``--strict``.
"""
