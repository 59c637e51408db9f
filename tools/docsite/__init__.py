"""The documentation site's generated parts, where the code is the source.

- each built-in connector's page, where its class and module are the source:
  :mod:`tools.docsite.connector_classes` (which connectors, the class of a task type),
  :mod:`tools.docsite.facts` (task type, class, secrets, replay window),
  :mod:`tools.docsite.field_reads` (the ``TaskTemplate.custom`` fields its code reads, by ast),
  :mod:`tools.docsite.field_tables` (those fields beside the page's meanings, and the overview),
  :mod:`tools.docsite.phases` (its PhaseTable), :mod:`tools.docsite.iam` (its ``iam_actions``),
  :mod:`tools.docsite.calls_diagram` (the Mermaid sequence diagram of its AWS calls), written with
  :mod:`tools.docsite.markdown_tables` and failing with :class:`tools.docsite.errors.DocsError`;
- :mod:`tools.docsite.parameters`: the stack's parameters, read from template.yaml;
- :mod:`tools.docsite.lifecycle`: the task record's states and transitions, read from
  connectors/store/ (lifecycle.py and the writes mixed into its TaskStore), and the Mermaid
  state diagram that must match them;
- :mod:`tools.docsite.hooks`: the MkDocs hook (mkdocs.yml) that puts them into the pages at build
  time, where a page says ``<!-- generated: ... -->``, and adds the locally fetched mermaid.min.js.

Nothing generated is committed: ``make docs-build`` makes it anew from the code every time, and
``make test`` runs that build with ``--strict``.
"""
